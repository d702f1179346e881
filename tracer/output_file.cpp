#include "tracer/output_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>  // renameat2
#include <cstdlib>
#include <cstring>
#include <optional>

namespace vztrace::tracer {
namespace {

constexpr std::size_t kZBufferSize = std::size_t{1} << 20;

// Where vztrace's descriptor goes: well above the numbers a program uses (open and dup
// give the lowest free one), within its limit at the time (RLIMIT_NOFILE, 1024 by default
// here; a program may lower it), and not so high that the kernel's table of the process's
// descriptors grows past 1024 of them. Under a limit of 64 or less, the last one: 32
// below it would be among the program's first numbers (fd 4 under `ulimit -n 36`).
int high_descriptor_floor() {
    rlimit limit{};
    const bool known = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY;
    const rlim_t top = known ? std::min<rlim_t>(limit.rlim_cur, 1024) : 1024;
    if (top > 64) return static_cast<int>(top - 32);
    return top > 4 ? static_cast<int>(top - 1) : 3;
}

bool ends_with(std::string_view text, std::string_view suffix) {
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// Puts the complete trace at `to` in one step, as rename() does. When `to` is a regular
// file the two are exchanged and the old one removed: renamed over a file, ext4
// (auto_da_alloc) writes the new one out before rename() returns, 0.3-0.5 ms of a run that
// replaces a recent trace on this team's VM; exchanged, it is written back later like any
// other file. Elsewhere, or when the exchange is not possible, rename() as before.
bool replace_with(const std::string& from, const std::string& to) {
    struct stat st {};
    if (::lstat(to.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_EXCHANGE) == 0) {
        if (::unlink(from.c_str()) == 0) return true;
        // Not the regular file looked at a moment ago (a directory now): put it back.
        ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_EXCHANGE);
    }
    return ::rename(from.c_str(), to.c_str()) == 0;
}

// Copies what `in` holds from where it is to its end into `out`. False with errno set.
bool copy_all(int in, int out) {
    while (true) {
        const ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, std::size_t{1} << 30, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n == 0;
    }
}

// Moves `from` to `to`: renamed, or copied and removed when they are on different file
// systems. False with errno set when it cannot be.
bool move_file(const std::string& from, const std::string& to) {
    if (::rename(from.c_str(), to.c_str()) == 0) return true;
    if (errno != EXDEV) return false;
    const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
    const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool copied = in >= 0 && out >= 0 && copy_all(in, out);
    const int error = errno;
    if (in >= 0) ::close(in);
    if (out >= 0 && ::close(out) != 0) copied = false;
    if (!copied) {
        ::unlink(to.c_str());
        errno = error;
        return false;
    }
    ::unlink(from.c_str());
    return true;
}

}  // namespace

std::string hidden_name_beside(const std::string& path, std::string_view tail) {
    const std::size_t slash = path.rfind('/');
    const std::size_t start = slash == std::string::npos ? 0 : slash + 1;
    std::string base = path.substr(start);
    if (1 + base.size() + tail.size() > NAME_MAX) base.resize(NAME_MAX - 1 - tail.size());
    return fmt::format("{}.{}{}", std::string_view(path).substr(0, start), base, tail);
}

namespace {

// A new file beside `path` under a hidden temporary name of this process's, set in `name`:
// `.NAME.vztrace-PID.tmp`, or with a number after PID when a file has that name already
// (the program's own, put there while the trace is written, or one a killed vztrace of the
// same pid left). Never opens one that exists. The descriptor, or -1 with errno set.
int create_beside(const std::string& path, mode_t mode, std::string& name) {
    for (int n = 0; n < 100; ++n) {
        name = hidden_name_beside(path, n == 0 ? fmt::format(".vztrace-{}.tmp", ::getpid())
                                               : fmt::format(".vztrace-{}-{}.tmp", ::getpid(), n));
        const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;  // errno: EEXIST
}

}  // namespace

OutputFile::OutputFile(std::string path, Placement placement, const ReaderWait& wait)
    : path_(std::move(path)) {
    struct stat st {};
    const bool exists = ::stat(path_.c_str(), &st) == 0;
    if (placement == Placement::kInPlace) {
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd_ < 0) fail("", errno);
        return;
    }
    if (exists && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) {
            fail("", EISDIR);
            return;
        }
        if (S_ISFIFO(st.st_mode)) {
            open_fifo(wait);
        } else {
            fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
        }
    } else {
        const mode_t mode = exists ? (st.st_mode & 07777) : 0666;  // umask applies
        fd_ = create_beside(path_, mode, temp_path_);
        if (fd_ < 0) {
            const int saved = errno;
            temp_path_.clear();
            fail("", saved);
            return;
        }
    }
    if (fd_ < 0) {
        fail("", errno);
        return;
    }
    if (ends_with(path_, ".gz")) {
        zstream_ = std::make_unique<z_stream>();
        std::memset(zstream_.get(), 0, sizeof(z_stream));
        // windowBits 15 + 16: a gzip header, so `gunzip` and Perfetto read it.
        if (deflateInit2(zstream_.get(), 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            zstream_.reset();
            fail("zlib", ENOMEM);
            return;
        }
        zbuffer_.resize(kZBufferSize);
    }
}

void wait_for_reader(const std::function<bool()>& try_open, bool (*give_up)()) {
    while (!try_open()) {
        if (give_up != nullptr && give_up()) return;
        timespec pause{0, 10'000'000};
        ::nanosleep(&pause, nullptr);
    }
}

void OutputFile::open_fifo(const ReaderWait& wait) {
    int open_errno = 0;
    const auto try_open = [this, &open_errno] {
        fd_ = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        open_errno = errno;
        return fd_ >= 0 || open_errno != ENXIO;  // ENXIO: no reader yet
    };
    if (!try_open()) {
        if (wait) {
            wait(try_open);
        } else {
            wait_for_reader(try_open, nullptr);
        }
    }
    if (fd_ >= 0) {
        pipe_ = true;
        ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);  // writes wait for the reader
    } else if (open_errno == ENXIO) {
        error_ = fmt::format("cannot write '{}': the fifo got no reader", path_);
    } else {
        fail("", open_errno);
    }
}

OutputFile::~OutputFile() {
    if (zstream_) deflateEnd(zstream_.get());
    let_descriptor_go();
    if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void OutputFile::fail(std::string_view what, int errno_value) {
    if (!error_.empty()) return;
    error_ = what.empty() ? fmt::format("cannot write '{}': {}", path_, std::strerror(errno_value))
                          : fmt::format("cannot write '{}': {}: {}", path_, what,
                                        std::strerror(errno_value));
    // Under its temporary name the trace is lost now: its bytes go at once, not at the end,
    // so that a disk it filled has room for the program again (a write of the program's
    // after vztrace's failed with ENOSPC too). A stream written in place (a child's part)
    // keeps what it has: it is read up to its last complete event.
    if (!temp_path_.empty() && descriptor_is_own()) {
        [[maybe_unused]] const int ignored = ::ftruncate(fd_, 0);  // it goes at the end anyway
    }
}

void OutputFile::reopen_for_each_write() {
    if (!ok() || zstream_ || fd_ < 0) return;
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) return;
    reopen_path_ = temp_path_.empty() ? path_ : temp_path_;
    device_ = st.st_dev;
    inode_ = st.st_ino;
    // Opened before the program's first line: O_APPEND from here on, as when opened again.
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_APPEND);
    if (const int high = ::fcntl(fd_, F_DUPFD_CLOEXEC, high_descriptor_floor()); high >= 0) {
        ::close(fd_);
        fd_ = high;
    }
}

bool OutputFile::write_raw(const char* data, std::size_t size) {
    if (!reopen_path_.empty() && !holds_own_descriptor()) {
        fd_ = -1;  // closed by the program, or its file now: not vztrace's to close
        if (!open_again()) {
            // The program holds every descriptor it may have (EMFILE), or the system's are
            // all taken (ENFILE), for a while as a rule (a server backing off): the bytes
            // wait for the next write, up to kMostHeld, and the end of the trace.
            const int error = errno;
            if ((error == EMFILE || error == ENFILE) && held_.size() + size <= kMostHeld) {
                held_.append(data, size);
                return true;
            }
            fail("", error);
            return false;
        }
    }
    if (!held_.empty()) {
        const bool ok = write_all(held_.data(), held_.size());
        std::string().swap(held_);
        if (!ok) return false;
    }
    return write_all(data, size);
}

bool OutputFile::open_again() {
    const int low = ::open(reopen_path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (low < 0) return false;
    struct stat st {};
    if (::fstat(low, &st) != 0) {
        const int error = errno;
        ::close(low);
        errno = error;
        return false;
    }
    const int high = ::fcntl(low, F_DUPFD_CLOEXEC, high_descriptor_floor());
    if (high >= 0) ::close(low);
    fd_ = high >= 0 ? high : low;  // no room up there: the number it got
    device_ = st.st_dev;
    inode_ = st.st_ino;
    return true;
}

bool OutputFile::holds_own_descriptor() const {
    struct stat st {};
    return fd_ >= 0 && ::fstat(fd_, &st) == 0 && st.st_dev == device_ && st.st_ino == inode_;
}

int OutputFile::reopen_for_reading() const {
    if (!descriptor_is_own()) return -1;
    return ::open(fmt::format("/proc/self/fd/{}", fd_).c_str(), O_RDONLY | O_CLOEXEC);
}

void OutputFile::let_descriptor_go() {
    if (descriptor_is_own()) ::close(fd_);
    fd_ = -1;
}

WriteSignalsHeld::WriteSignalsHeld() {
    sigset_t held, pending;
    sigemptyset(&held);
    sigaddset(&held, SIGPIPE);
    sigaddset(&held, SIGXFSZ);
    pthread_sigmask(SIG_BLOCK, &held, &before_);
    sigpending(&pending);
    for (const unsigned which : {kPipe, kSize}) {
        if (sigismember(&pending, signal_of(which)) == 1) already_pending_ |= which;
    }
}

WriteSignalsHeld::~WriteSignalsHeld() {
    for (const unsigned which : {kPipe, kSize}) {
        if ((raised_ & which) == 0 || (already_pending_ & which) != 0) continue;
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, signal_of(which));
        const timespec now{0, 0};
        while (sigtimedwait(&one, nullptr, &now) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &before_, nullptr);
}

bool OutputFile::write_all(const char* data, std::size_t size) {
    WriteSignalsHeld held;
    while (size > 0) {
        const ssize_t n = ::write(fd_, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            held.failed(errno);
            fail("", errno);
            return false;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
        bytes_written_ += static_cast<std::uint64_t>(n);
    }
    return true;
}

bool OutputFile::deflate_some(int flush) {
    int rc = Z_OK;
    do {
        zstream_->next_out = reinterpret_cast<Bytef*>(zbuffer_.data());
        zstream_->avail_out = static_cast<uInt>(zbuffer_.size());
        rc = deflate(zstream_.get(), flush);
        if (rc == Z_STREAM_ERROR) {
            fail("zlib", EIO);
            return false;
        }
        const std::size_t produced = zbuffer_.size() - zstream_->avail_out;
        if (!write_raw(zbuffer_.data(), produced)) return false;
    } while (zstream_->avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    return true;
}

bool OutputFile::write(std::string_view bytes) {
    if (!ok()) return false;
    if (!zstream_) return write_raw(bytes.data(), bytes.size());
    zstream_->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    zstream_->avail_in = static_cast<uInt>(bytes.size());
    return deflate_some(Z_NO_FLUSH);
}

// The program removed the file under its temporary name (a loop removing what its working
// directory lists, `git clean -xf`), or put another there: its bytes are still the
// descriptor's, and are copied back under that name, or under a new one beside it when
// the program's file holds it (which stays as the program left it). False with errno set
// when they cannot be.
bool OutputFile::restore_temp_name() {
    struct stat held {};
    struct stat named {};
    if (temp_path_.empty() || fd_ < 0 || ::fstat(fd_, &held) != 0) return true;
    if (::stat(temp_path_.c_str(), &named) == 0 && named.st_dev == held.st_dev &&
        named.st_ino == held.st_ino) {
        return true;
    }
    // The name is not this file's any more: nothing is to remove it from here on (a
    // discard after a failure here removed the program's file).
    temp_path_.clear();
    const int in = ::open(fmt::format("/proc/self/fd/{}", fd_).c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return false;
    std::string restored;
    const int out = create_beside(path_, held.st_mode & 07777, restored);
    bool copied = out >= 0 && copy_all(in, out);
    int error = errno;
    ::close(in);
    if (out >= 0 && ::close(out) != 0 && copied) {
        copied = false;
        error = errno;
    }
    if (copied) {
        temp_path_ = std::move(restored);
    } else if (out >= 0) {
        ::unlink(restored.c_str());
    }
    errno = error;
    return copied;
}

bool OutputFile::finish_writing() {
    if (!ok()) return false;
    if (zstream_ && !deflate_some(Z_FINISH)) return false;
    if (!held_.empty()) {  // the bytes that waited for a descriptor: now or never
        const std::string held = std::move(held_);
        held_.clear();
        if (!write_raw(held.data(), held.size())) return false;
        if (!held_.empty()) {
            fail("", EMFILE);
            return false;
        }
    }
    if (!reopen_path_.empty() && !holds_own_descriptor()) fd_ = -1;  // the program's now
    if (!restore_temp_name()) {
        fail("", errno);
        // Complete, but where only the program knows (it renamed the directory): said, not
        // left there unnamed (hunt AU).
        char link[PATH_MAX + 1];
        const ssize_t size =
            ::readlink(fmt::format("/proc/self/fd/{}", fd_).c_str(), link, sizeof link - 1);
        const std::string_view where(link, size > 0 ? static_cast<std::size_t>(size) : 0);
        if (!where.empty() && where[0] == '/' && !where.ends_with(" (deleted)")) {
            error_ += fmt::format(" (the trace is left at '{}')", where);
        }
        return false;
    }
    if (fd_ >= 0 && ::close(fd_) != 0) {
        fd_ = -1;
        fail("", errno);
        return false;
    }
    fd_ = -1;
    return true;
}

bool OutputFile::commit() {
    if (!finish_writing()) return false;
    if (!temp_path_.empty() && !replace_with(temp_path_, path_)) {
        fail("", errno);
        // Removed, or, when it cannot be (the program gave up the rights it needs), said
        // where it is: it was left unnamed (hunt AU).
        if (::unlink(temp_path_.c_str()) != 0 && errno != ENOENT) {
            error_ += fmt::format(" (the trace is left at '{}')", temp_path_);
        }
        return false;
    }
    committed_ = true;
    return true;
}

void OutputFile::discard() {
    let_descriptor_go();
    if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
    temp_path_.clear();
    committed_ = true;
}

bool OutputFile::commit_as(const std::string& path) {
    if (!finish_writing()) return false;
    const std::string from = temp_path_.empty() ? path_ : temp_path_;
    if (!move_file(from, path)) {
        fail("", errno);
        return false;
    }
    moved_from_temp_ = temp_path_;
    moved_to_ = path;
    temp_path_.clear();
    committed_ = true;
    return true;
}

bool OutputFile::reopen_at(std::uint64_t size) {
    if (!ok() || !committed_ || reopen_path_.empty() || zstream_) return false;
    if (!moved_to_.empty()) {
        if (!move_file(moved_to_, reopen_path_)) {
            fail("", errno);
            return false;
        }
        temp_path_ = moved_from_temp_;
        moved_to_.clear();
    }
    if (::truncate(reopen_path_.c_str(), static_cast<off_t>(size)) != 0) {
        fail("", errno);
        return false;
    }
    bytes_written_ = size;
    committed_ = false;
    return true;
}

}  // namespace vztrace::tracer
