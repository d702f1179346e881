// OutputFile: where a writer's bytes go. A regular file is written under a temporary
// name beside the target and renamed over it only once complete, so an existing trace is
// never lost to a failed run; a device or pipe (/dev/full, a fifo) is written in place.
// Names ending in .gz are compressed with zlib. Errors are returned, never thrown.
#pragma once

#include <zlib.h>

#include <memory>
#include <string>
#include <string_view>

namespace vztrace::tracer {

class OutputFile {
   public:
    // Opens `path` for writing; on failure error() says why and ok() is false.
    explicit OutputFile(std::string path);
    ~OutputFile();
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;

    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }
    bool write(std::string_view bytes);
    // Flushes, closes and renames into place. Returns false (with error()) on failure.
    bool commit();
    std::uint64_t bytes_written() const { return bytes_written_; }

   private:
    bool write_raw(const char* data, std::size_t size);
    bool deflate_some(int flush);
    void fail(std::string_view what, int errno_value);

    std::string path_;
    std::string temp_path_;  // empty when writing in place
    int fd_ = -1;
    std::unique_ptr<z_stream> zstream_;
    std::string zbuffer_;
    std::uint64_t bytes_written_ = 0;
    bool committed_ = false;
    std::string error_;
};

}  // namespace vztrace::tracer
