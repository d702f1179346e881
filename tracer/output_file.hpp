// OutputFile: where a writer's bytes go. A regular file is written under a temporary
// name beside the target and renamed over it only once complete, so an existing trace is
// never lost to a failed run; a device or pipe (/dev/full, a fifo) is written in place.
// Names ending in .gz are compressed with zlib. Errors are returned, never thrown.
#pragma once

#include <zlib.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace vztrace::tracer {

class OutputFile {
 public:
    enum class Placement {
        kWhenComplete,  // under a temporary name, renamed over `path` by commit()
        kInPlace,       // at `path` from the first byte (a part other processes read)
    };
    // Opens `path` for writing; on failure error() says why and ok() is false.
    explicit OutputFile(std::string path, Placement placement = Placement::kWhenComplete);
    ~OutputFile();
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;

    // A stream written while the program runs: the descriptor is opened for each write
    // and closed after, so a program that closes every descriptor (os.closerange) and
    // opens files of its own never has them confused with vztrace's. Regular files only:
    // a device or pipe keeps its descriptor (a fifo's reader would see an end of file).
    void reopen_for_each_write();

    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }
    bool write(std::string_view bytes);
    // Flushes, closes and renames into place. Returns false (with error()) on failure.
    bool commit();
    // Gives up: closes, and removes what was written under a temporary name.
    void discard();
    // Flushes, closes and moves what was written to `path` instead (another directory:
    // copied). Returns false (with error()) on failure.
    bool commit_as(const std::string& path);
    std::uint64_t bytes_written() const { return bytes_written_; }
    const std::string& path() const { return path_; }
    int descriptor() const { return fd_; }  // -1 while none is held

 private:
    bool finish_writing();  // flushes and closes
    bool write_raw(const char* data, std::size_t size);
    bool write_all(const char* data, std::size_t size);
    bool deflate_some(int flush);
    void fail(std::string_view what, int errno_value);

    std::string path_;
    std::string temp_path_;    // empty when writing in place
    std::string reopen_path_;  // set: no descriptor is held between writes
    int fd_ = -1;
    std::unique_ptr<z_stream> zstream_;
    std::string zbuffer_;
    std::uint64_t bytes_written_ = 0;
    bool committed_ = false;
    std::string error_;
};

// Writes filled buffers to an OutputFile from a second thread, so that formatting the
// next buffer overlaps the kernel's copy (and, for .gz, the compression) of the last one.
// At most three buffers exist: one being written, one handed over, one being filled.
// The file belongs to the thread from construction until finish() returns.
class BackgroundWriter {
 public:
    explicit BackgroundWriter(OutputFile& file);
    ~BackgroundWriter();  // waits for the thread; finish() first to see the outcome
    BackgroundWriter(const BackgroundWriter&) = delete;
    BackgroundWriter& operator=(const BackgroundWriter&) = delete;

    // Hands over the first `used` bytes of `filled`; returns a buffer to fill next (a
    // written one, at its full size, or an empty string). Waits only while the thread is
    // still on the buffer handed over before.
    std::string exchange(std::string filled, std::size_t used);
    // Waits until every buffer handed over is written; false when a write failed (the
    // file's error() says why).
    bool finish();

 private:
    void run();

    OutputFile& file_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::string pending_;
    std::size_t pending_used_ = 0;
    bool has_pending_ = false;
    bool busy_ = false;
    std::string spare_;
    bool stopping_ = false;
    bool failed_ = false;
    std::thread thread_;  // last: starts once everything above is constructed
};

}  // namespace vztrace::tracer
