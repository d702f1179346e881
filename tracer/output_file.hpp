// OutputFile: where a writer's bytes go. A regular file is written under a temporary
// name beside the target and renamed over it only once complete, so an existing trace is
// never lost to a failed run; a device or pipe (/dev/full, a fifo) is written in place.
// Names ending in .gz are compressed with zlib. Errors are returned, never thrown.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <zlib.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace vztrace::tracer {

// The hidden name beside `path`: "." + its file name + `tail`, in the same directory, the
// file name cut short so that the whole stays within NAME_MAX (a valid name near the
// limit must not make one that is too long).
std::string hidden_name_beside(const std::string& path, std::string_view tail);

// A fifo's reader is waited for by trying to open it (without blocking: a blocking open
// could miss the signal meant to end it) until `try_open` returns true: opened, or failed
// for good. A ReaderWait runs that loop its own way (a notice first, the signals held back
// at start let through meanwhile); wait_for_reader is the loop itself, every 10 ms, given
// up once `give_up` (when not null) returns true.
using ReaderWait = std::function<void(const std::function<bool()>& try_open)>;
void wait_for_reader(const std::function<bool()>& try_open, bool (*give_up)());

// While it lives, SIGPIPE and SIGXFSZ are held back on the calling thread, and one that its
// writes raised (failed() is told of their errors) is taken back: a pipe whose reader has
// gone makes them fail with EPIPE, a file past RLIMIT_FSIZE with EFBIG, one error of
// vztrace's, never the death of the program's process (python has not set these signals
// aside yet at start; a program may set them to SIG_DFL, and subprocess does so in a child
// before it execs).
class WriteSignalsHeld {
 public:
    WriteSignalsHeld();
    ~WriteSignalsHeld();
    WriteSignalsHeld(const WriteSignalsHeld&) = delete;
    WriteSignalsHeld& operator=(const WriteSignalsHeld&) = delete;
    // A write (or ftruncate) failed with `error`.
    void failed(int error) {
        if (error == EPIPE) raised_ |= kPipe;
        if (error == EFBIG) raised_ |= kSize;
    }

 private:
    static constexpr unsigned kPipe = 1, kSize = 2;
    static int signal_of(unsigned which) { return which == kPipe ? SIGPIPE : SIGXFSZ; }
    sigset_t before_;
    unsigned already_pending_ = 0;
    unsigned raised_ = 0;
};

class OutputFile {
 public:
    enum class Placement {
        kWhenComplete,  // under a temporary name, renamed over `path` by commit()
        kInPlace,       // at `path` from the first byte (a part other processes read)
    };
    // Opens `path` for writing; on failure error() says why and ok() is false. A fifo
    // with no reader yet is waited for, as `tee` does, through `wait` when given.
    explicit OutputFile(std::string path, Placement placement = Placement::kWhenComplete,
                        const ReaderWait& wait = {});
    ~OutputFile();
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;

    // A stream written while the program runs: its descriptor moves far above the
    // program's (which get the lowest free numbers, so that an open of vztrace's at a write
    // took the number the program's next open or dup2 was to have), and each write first
    // makes sure that number still holds this file. A program that closed it (os.closerange)
    // or put a file of its own there never has its file written to or closed: vztrace opens
    // its own again. Regular files only: a device or pipe keeps its descriptor where it is.
    void reopen_for_each_write();

    // A regular file, opened again by its name where need be (not a device or a pipe).
    bool reopens_for_each_write() const { return !reopen_path_.empty(); }
    // Closes the descriptor if it is still this file's, and forgets it either way (in a
    // forked child: the parent's, which the fork copied).
    void let_descriptor_go();
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
    // An exec that failed: the stream that commit() or commit_as() closed for the next
    // image is taken back where it was written, cut to its first `size` bytes, and written
    // on. False (with error() unless the stream is not one that can be: a device, a pipe,
    // compressed) when it cannot be.
    bool reopen_at(std::uint64_t size);
    std::uint64_t bytes_written() const { return bytes_written_; }
    const std::string& path() const { return path_; }
    // Where the bytes go until commit(): the temporary name, or path() when in place.
    const std::string& temporary_path() const { return temp_path_.empty() ? path_ : temp_path_; }
    int descriptor() const { return fd_; }  // -1 while none is held
    // A new descriptor that reads the file written here, through the one held, so that a
    // file whose name the program removed meanwhile is read all the same. -1 when none is
    // held, or it is no longer this file's: the file is then to be read by its name.
    int reopen_for_reading() const;

 private:
    void open_fifo(const ReaderWait& wait);
    // The file at reopen_path_ opened again, its descriptor moved high; false on failure
    // (errno set).
    bool open_again();
    // Whether fd_ still holds the file this writes (not a number the program reused).
    bool holds_own_descriptor() const;
    // A descriptor is held and is this file's: one never reopened, or checked to be.
    bool descriptor_is_own() const {
        return fd_ >= 0 && (reopen_path_.empty() || holds_own_descriptor());
    }
    bool finish_writing();  // flushes and closes
    bool restore_temp_name();
    bool write_raw(const char* data, std::size_t size);
    bool write_all(const char* data, std::size_t size);
    bool deflate_some(int flush);
    void fail(std::string_view what, int errno_value);

    std::string path_;
    std::string temp_path_;    // empty when writing in place
    std::string reopen_path_;  // set: opened again by this name where need be
    dev_t device_ = 0;         // the file fd_ holds, when reopen_path_ is set
    ino_t inode_ = 0;
    std::string moved_to_;         // where commit_as() moved the file
    std::string moved_from_temp_;  // temp_path_ before it
    int fd_ = -1;
    bool pipe_ = false;  // a fifo (or a pipe through /dev/stdout): SIGPIPE held while writing
    std::unique_ptr<z_stream> zstream_;
    std::string zbuffer_;
    std::uint64_t bytes_written_ = 0;
    // Bytes no descriptor could be opened for (EMFILE, ENFILE): written before the next.
    std::string held_;
    static constexpr std::size_t kMostHeld = std::size_t{16} << 20;
    bool committed_ = false;
    std::string error_;
};

}  // namespace vztrace::tracer
