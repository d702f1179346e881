#include "tracer/session.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>

#include "tracer/format/chrome_json.hpp"
#include "tracer/format/perfetto_encoder.hpp"
#include "tracer/format/perfetto_reader.hpp"
#include "tracer/one_line.hpp"
#include "tracer/part_file.hpp"
#include "tracer/root_registry.hpp"

namespace vztrace::tracer {
namespace {

std::string human_bytes(std::uint64_t bytes) {
    if (bytes >= (std::uint64_t{1} << 30)) return fmt::format("{:.1f} GiB", bytes / 1073741824.0);
    if (bytes >= (std::uint64_t{1} << 20)) return fmt::format("{:.1f} MiB", bytes / 1048576.0);
    if (bytes >= 1024) return fmt::format("{:.1f} KiB", bytes / 1024.0);
    return fmt::format("{} bytes", bytes);
}

std::string json_text(std::string_view text) {
    std::string out;
    format::append_json_string(out, text);
    return out;
}

// How long the root waits, at its end, for children that are still running to leave
// their parts. A child that outlives it keeps what it had written by then. After a
// terminating signal the root waits a second: python would die at once, and a `docker
// stop` or systemd kills 10 s after its SIGTERM, which lost the whole trace.
constexpr std::chrono::milliseconds kChildWait{10000};
constexpr std::chrono::milliseconds kChildWaitAfterSignal{1000};

// Appends a child's stream to `out`. One cut short (its process was killed) keeps its
// whole packets, and its open calls are ended at their last event and flagged.
// An empty file at `path` (mode 0600). False with errno set when it cannot be made.
bool create_empty(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    return fd >= 0 && ::close(fd) == 0;
}

bool append_part(const ChildPart& part, OutputFile& out, std::string& error, StreamCounts& totals) {
    std::uint64_t whole = ~std::uint64_t{0};
    std::vector<format::PerfettoReader::SequenceEnd> ends;
    if (!part.summary) {
        format::PerfettoReader reader;
        // A call is a slice on a thread's track (a task's steps are not calls, as in
        // PerfettoSequence's counts).
        reader.on_slice = [&totals, &reader](const format::DecodedSlice& slice) {
            if (!reader.is_named_track(slice.track_uuid)) ++totals.calls;
        };
        if (!reader.read_file(part.stream) && !reader.truncated()) {
            error = reader.error();
            return false;
        }
        whole = reader.whole_bytes();
        ends = reader.sequence_ends();
        for (const auto& end : ends) {
            if (end.named_track) continue;  // steps, not calls
            totals.calls += end.open_calls;
            totals.unfinished += end.open_calls;
        }
    }
    const int fd = ::open(part.stream.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error = fmt::format("cannot read '{}': {}", part.stream, std::strerror(errno));
        return false;
    }
    std::string block(std::size_t{4} << 20, '\0');
    std::uint64_t copied = 0;
    bool ok = true;
    while (ok && copied < whole) {
        const std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), whole - copied));
        const ssize_t n = ::read(fd, block.data(), want);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        ok = out.write(std::string_view(block.data(), static_cast<std::size_t>(n)));
        copied += static_cast<std::uint64_t>(n);
    }
    ::close(fd);
    if (!ok) return false;
    format::ByteBuffer closing;
    for (const auto& end : ends)
        format::append_unfinished_ends(end.sequence_id, end.open_calls, closing,
                                       end.named_track ? end.track_uuid : 0);
    return closing.empty() || out.write(closing.view());
}

// The descriptors open in this process from 3 on, from /proc/self/fd (or, without it, by
// asking each number up to a bound).
std::vector<int> open_descriptors() {
    std::vector<int> found;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
        const int own = ::dirfd(dir);
        while (const dirent* entry = ::readdir(dir)) {
            char* end = nullptr;
            const long fd = std::strtol(entry->d_name, &end, 10);
            if (end != entry->d_name && *end == '\0' && fd >= 3 && fd != own) {
                found.push_back(static_cast<int>(fd));
            }
        }
        ::closedir(dir);
        return found;
    }
    const long limit = ::sysconf(_SC_OPEN_MAX);
    for (long fd = 3; fd < std::min(limit > 0 ? limit : 1024, 65536L); ++fd) {
        if (::fcntl(static_cast<int>(fd), F_GETFD) != -1) found.push_back(static_cast<int>(fd));
    }
    return found;
}

}  // namespace

void release_pipes_and_sockets(int keep) {
    const int placeholder = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    for (const int fd : open_descriptors()) {
        struct stat st {};
        if (fd == keep || fd == placeholder || ::fstat(fd, &st) != 0) continue;
        if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode)) continue;
        if (placeholder < 0 || ::dup3(placeholder, fd, O_CLOEXEC) < 0) ::close(fd);
    }
    if (placeholder >= 0) ::close(placeholder);
}

namespace {

// vztrace's own lines go to the stderr the process started with. A program that closes it
// and opens a file of its own, which then gets descriptor 2, must not find them in that
// file: they are dropped, as they would be with stderr closed.
struct StartingStderr {
    bool open = false;
    dev_t device = 0;
    ino_t inode = 0;
};
StartingStderr g_starting_stderr;

void note_starting_stderr() {
    struct stat st {};
    g_starting_stderr.open = ::fstat(STDERR_FILENO, &st) == 0;
    g_starting_stderr.device = st.st_dev;
    g_starting_stderr.inode = st.st_ino;
}

// A message of vztrace's on stderr, which the program shares, must change nothing the
// program does: the reader may have gone (a program run as `... 2>&1 | head -1` that set
// SIGPIPE to SIG_DFL died of vztrace's summary line, status 141, where python ended with
// 0), or stopped reading with the pipe full (vztrace then never ended, where python had).
// So SIGPIPE is held back from this thread (and the one a write raises is taken back;
// SIGXFSZ too, for a stderr in a file past RLIMIT_FSIZE), and a pipe that stays full for
// a second gets no more of vztrace's messages.
void write_to_stderr(const std::string& text) {
    static std::atomic<bool> stuck{false};  // a message waited its second in vain: no more waiting
    if (stuck) return;
    WriteSignalsHeld held;
    constexpr int kWaitMs = 1000;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
    for (std::size_t done = 0; done < text.size();) {
        pollfd fd{STDERR_FILENO, POLLOUT, 0};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        const int ready = ::poll(&fd, 1, static_cast<int>(std::max<std::int64_t>(0, left.count())));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
            if (ready == 0) stuck = true;
            break;
        }
        // At most PIPE_BUF at a time: a pipe that polls writable takes that much at once.
        const ssize_t written = ::write(STDERR_FILENO, text.data() + done,
                                        std::min<std::size_t>(text.size() - done, PIPE_BUF));
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) {
            if (written < 0) held.failed(errno);
            break;
        }
        done += static_cast<std::size_t>(written);
    }
}

[[gnu::format(printf, 1, 2)]] void say(const char* format, ...) {
    struct stat st {};
    if (!g_starting_stderr.open || ::fstat(STDERR_FILENO, &st) != 0 ||
        st.st_dev != g_starting_stderr.device || st.st_ino != g_starting_stderr.inode) {
        return;
    }
    va_list args;
    va_start(args, format);
    va_list again;
    va_copy(again, args);
    const int length = std::vsnprintf(nullptr, 0, format, args);
    va_end(args);
    std::string text(length > 0 ? static_cast<std::size_t>(length) : 0, '\0');
    std::vsnprintf(text.data(), text.size() + 1, format, again);
    va_end(again);
    // One line per message, whatever the names in it hold (a newline in -o's path).
    const bool ends_line = !text.empty() && text.back() == '\n';
    if (ends_line) text.pop_back();
    write_to_stderr(one_line(text) + (ends_line ? "\n" : ""));
}

}  // namespace

std::uint64_t current_tid() { return static_cast<std::uint64_t>(::syscall(SYS_gettid)); }

Session::Session(TraceSettings settings, TreePlan plan, RecordingInfo info)
    : settings_(std::move(settings)),
      plan_(std::move(plan)),
      info_(std::move(info)),
      // A device or pipe named with no extension (-o /dev/null) gets Perfetto.
      format_(format_of(plan_.output.empty() ? settings_.output : plan_.output) ==
                      TraceFormat::kJson
                  ? TraceFormat::kJson
                  : TraceFormat::kPerfetto),
      pid_(::getpid()),
      nonce_(static_cast<std::uint64_t>(TickClock::monotonic_ns())),
      pool_(std::make_unique<ChunkPool>(pool_limit())) {
    TickClock::select();
    start_anchor_ = TickClock::anchor();
    note_starting_stderr();
}

ReaderWait Session::reader_wait() const {
    return [this](const std::function<bool()>& try_open) {
        if (!settings_.quiet) {
            say("vztrace: waiting for a reader of the fifo '%s'\n", plan_.output.c_str());
        }
        if (run_reader_wait_ != nullptr) {
            run_reader_wait_(try_open);
        } else {
            wait_for_reader(try_open, nullptr);
        }
    };
}

std::string Session::open_stream() {
    if (plan_.role == ProcessRole::kUntraced) return {};
    std::string path;
    OutputFile::Placement placement = OutputFile::Placement::kInPlace;
    stream_temp_.clear();
    if (plan_.role == ProcessRole::kChild) {
        path = stream_path(plan_.parts_dir, pid_, nonce_);
    } else if (format_ == TraceFormat::kPerfetto) {
        path = plan_.output;  // written under a temporary name, renamed when complete
        placement = OutputFile::Placement::kWhenComplete;
    } else if (!plan_.parts_dir.empty()) {
        path = stream_path(plan_.parts_dir, pid_, nonce_);
    } else {
        path = hidden_name_beside(plan_.output, fmt::format(".vztrace-{}.pftrace", pid_));
        stream_temp_ = path;
    }
    stream_ = std::make_unique<OutputFile>(path, placement, reader_wait());
    // A child that begins as its tree's root ends: after the root has removed the parts
    // directory, or after its last look at the parts (collect_parts), when the child would
    // write a part no one reads, its calls missing from the trace with nothing said. It
    // leaves what it made.
    const char* kRootEnded = "its tree's root had ended";
    // The parts directory gone: removed by the root at its end, or by the program (a cleanup
    // of $TMPDIR), its root still running (its entry stays until it has collected its
    // children): that root was said to have ended (hunt AU).
    const auto gone = [&]() -> std::string {
        if (plan_.root_pid > 1 && root_registered(default_registry_dir(), plan_.root_pid)) {
            return fmt::format(
                "the directory of its tree's traces ('{}') was removed while its "
                "root ran",
                plan_.parts_dir);
        }
        return kRootEnded;
    };
    if (!stream_->ok()) {
        if (plan_.role == ProcessRole::kChild && tree_end(plan_.parts_dir) == TreeEnd::kRemoved) {
            return gone();
        }
        return stream_->error();
    }
    // The directory gone since the stream was made is the mark too: the root removes it,
    // mark and all, once its trace is written, and a child that made its stream after the
    // root's last look went on with no word, its part read by no one (CI, 3.11: 1 run of
    // the loop test's 4).
    if (plan_.role == ProcessRole::kChild) {
        const TreeEnd end = tree_end(plan_.parts_dir);
        if (end != TreeEnd::kRunning) {
            stream_->discard();
            ::unlink(started_marker(plan_.parts_dir, pid_, nonce_).c_str());
            return end == TreeEnd::kEnded ? std::string(kRootEnded) : gone();
        }
    }
    stream_->reopen_for_each_write();
    StreamOptions options;
    options.compress = settings_.compress;
    options.max_size = settings_.max_size;
    options.ring = settings_.ring > 0;
    options.ring_calls = settings_.ring_calls;
    options.trace_bytes = &tree_counters(plan_.parts_dir).bytes;
    options.filter.max_depth = settings_.max_stack_depth;
    options.filter.min_duration_ns = static_cast<std::int64_t>(settings_.min_duration_ns);
    options.filter.sparse = settings_.log_sparse;
    options.filter.symbols = &symbols_;
    options.filter.pauses = &pauses_;
    writer_ = std::make_unique<TraceWriter>(*pool_, symbols_, *stream_, start_anchor_, pid_,
                                            next_sequence_id(plan_.parts_dir), options);
    const bool opens_trace = plan_.role != ProcessRole::kChild && format_ == TraceFormat::kPerfetto;
    writer_->write_process_start(process_name_,
                                 opens_trace ? "recorded by vztrace " + info_.vztrace_version : "");
    return {};
}

std::string Session::start() {
    spare_ = std::make_unique<ThreadBuffer>(refusing_sink_, 0, 0, 0);
    std::string error = open_stream();
    if (error.empty() && writer_) writer_->allow_thread();
    return error;
}

void Session::announce() {
    if (plan_.role == ProcessRole::kChild) mark_started(plan_.parts_dir, pid_, nonce_);
}

std::string Session::killed_marker() const {
    return plan_.role == ProcessRole::kChild ? killed_marker_path(plan_.parts_dir, pid_, nonce_)
                                             : std::string();
}

std::string Session::temporary_file() const {
    if (!stream_temp_.empty()) return stream_temp_;
    if (stream_ && stream_->temporary_path() != stream_->path()) return stream_->temporary_path();
    return {};
}

void Session::pause_writer() {
    if (writer_) writer_->stop_thread();
}

void Session::resume_writer() {
    if (writer_ && !finished_) writer_->allow_thread();
}

void Session::abandon() {
    if (finished_) return;
    finished_ = true;
    unregister_root();
    if (writer_) writer_->stop_thread();
    writer_.reset();
    stream_.reset();  // a temporary name is removed; the user's file stays as it was
    if (!stream_temp_.empty()) ::unlink(stream_temp_.c_str());
    if (plan_.role == ProcessRole::kRoot && !plan_.parts_dir.empty()) {
        remove_parts_dir(plan_.parts_dir);
    }
    if (plan_.role == ProcessRole::kChild) {
        // A child that ran no program (`sys.executable -V`): to its root it was never
        // traced, rather than killed before its part was written (its stream too is one
        // the root looks for).
        ::unlink(started_marker(plan_.parts_dir, pid_, nonce_).c_str());
        ::unlink(stream_path(plan_.parts_dir, pid_, nonce_).c_str());
        return;
    }
    if (!settings_.quiet) {
        say("vztrace: no trace written: the program did not start\n");
    }
}

bool Session::restart_after_fork(std::vector<SymbolId> inherited) {
    const std::lock_guard lock(threads_mutex_);
    // The parent's buffers, pool, stream and writer stay as they are (their pages are the
    // parent's, copy-on-write; the parent's stream must not be closed or removed here).
    for (auto& buffer : threads_) (void)buffer.release();
    threads_.clear();
    keep_retired_ = false;
    (void)writer_.release();
    if (stream_) stream_->let_descriptor_go();  // the parent's descriptor, copied by the fork
    (void)stream_.release();
    (void)pool_.release();
    detail::t_buffer = nullptr;
    TraceWriter::forget_ended_threads();
    pid_ = ::getpid();
    nonce_ = static_cast<std::uint64_t>(TickClock::monotonic_ns());
    finished_ = false;
    finish_result_ = true;
    inherited_ = std::move(inherited);
    plan_ = plan_after_fork(plan_, settings_);
    if (plan_.role == ProcessRole::kUntraced) return false;
    if (plan_.role == ProcessRole::kOwnFile) {
        // A file of its own: --max-size caps it alone, not after the bytes of the parent's,
        // whose count the fork copied.
        tree_counters("").bytes.store(0);
    }
    if (plan_.role == ProcessRole::kChild) mark_started(plan_.parts_dir, pid_, nonce_);
    pool_ = std::make_unique<ChunkPool>(pool_limit());
    if (std::string error = open_stream(); !error.empty()) {
        if (!settings_.quiet)
            say("vztrace: warning: process %d is not traced: %s\n", static_cast<int>(pid_),
                error.c_str());
        plan_.role = ProcessRole::kUntraced;
        return false;
    }
    writer_->allow_thread();
    return true;
}

ThreadBuffer& Session::attach_current_thread() {
    if (writer_) writer_->hand_over_ended_threads();
    const std::lock_guard lock(threads_mutex_);
    try {
        return attach_locked();
    } catch (const std::bad_alloc&) {
        // Out of memory on the program's thread, inside a callback: the recording stops
        // and this event goes where nothing is kept.
        stop_for_memory();
        return *spare_;
    }
}

void Session::stop_for_memory() noexcept {
    if (writer_) writer_->stop_for_memory();
    if (stop_recording_ != nullptr) stop_recording_();
}

ThreadBuffer& Session::attach_locked() {
    // Threads that have exited and been retired by the writer: only this list refers to
    // their buffers, which go now (not once the end has begun: it goes through the list).
    if (!keep_retired_) {
        std::erase_if(threads_, [](const auto& buffer) { return buffer->retired(); });
    }
    const std::uint64_t tid = current_tid();
    const std::uint32_t sequence = next_sequence_id(plan_.parts_dir);
    threads_.push_back(std::make_unique<ThreadBuffer>(*writer_, tid, sequence,
                                                      format::thread_track_uuid(pid_, sequence),
                                                      format::process_track_uuid(pid_)));
    threads_.back()->sequence().set_image_salt(nonce_);
    threads_.back()->set_name(static_cast<pid_t>(tid) == pid_ ? std::string("MainThread")
                                                              : fmt::format("Thread {}", tid));
    // A forked child has one thread, the one that forked.
    if (!inherited_.empty()) threads_.back()->sequence().expect_inherited(std::move(inherited_));
    inherited_.clear();
    detail::t_buffer = threads_.back().get();
    // The main thread's end is the process's.
    if (static_cast<pid_t>(tid) != pid_) TraceWriter::watch_thread_end(*threads_.back());
    return *threads_.back();
}

void Session::name_thread(std::uint64_t tid, std::string name) {
    const std::lock_guard lock(threads_mutex_);
    // The newest buffer with this tid: the kernel reuses ids of threads that ended.
    for (auto it = threads_.rbegin(); it != threads_.rend(); ++it) {
        if ((*it)->tid() == tid) {
            (*it)->set_name(std::move(name));
            return;
        }
    }
}

std::vector<ThreadBuffer*> Session::buffers() {
    const std::lock_guard lock(threads_mutex_);
    keep_retired_ = true;
    std::vector<ThreadBuffer*> result;
    for (const auto& buffer : threads_) result.push_back(buffer.get());
    return result;
}

ProcessSummary Session::summary() const {
    ProcessSummary summary;
    summary.pid = pid_;
    summary.counts = writer_->counts();
    // A ring that is full overwrites its oldest records: the program never waits.
    summary.memory_limit_reached = settings_.ring == 0 && pool_->limit_reached();
    summary.subinterpreters = subinterpreters_.load(std::memory_order_relaxed);
    return summary;
}

std::size_t Session::process_count(const CollectedParts& children) const {
    std::set<std::int64_t> pids = {pid_};
    for (const auto& part : children.parts) pids.insert(part.pid);
    return pids.size();
}

std::vector<std::pair<std::int64_t, std::uint64_t>> Session::subinterpreters(
    const CollectedParts& children) const {
    std::vector<std::pair<std::int64_t, std::uint64_t>> created;
    if (const std::uint64_t own = subinterpreters_.load(std::memory_order_relaxed); own > 0) {
        created.emplace_back(pid_, own);
    }
    for (const auto& part : children.parts) {
        if (part.summary && part.summary->subinterpreters > 0) {
            created.emplace_back(part.pid, part.summary->subinterpreters);
        }
    }
    return created;
}

bool Session::finish(std::uint64_t end_ticks, Ending ending) {
    if (finished_) return finish_result_;
    // Every allocation of the end (the writer's, the parts' collection, the JSON
    // conversion, the summary) may be refused under a limit on the address space: the
    // trace is then not written, and no exception ends the process (std::terminate,
    // SIGABRT). The file at -o stays as it was.
    try {
        return finish_writing(end_ticks, ending);
    } catch (const std::bad_alloc&) {
        std::fputs(
            "vztrace: error: out of memory (a limit on the address space?): the trace "
            "was not written\n",
            stderr);
        if (stream_) stream_->discard();
        if (!stream_temp_.empty()) ::unlink(stream_temp_.c_str());
        if (!plan_.parts_dir.empty() && plan_.role != ProcessRole::kChild &&
            ending == Ending::kEnd) {
            remove_parts_dir(plan_.parts_dir);
        }
        return finish_result_ = false;
    }
}

bool Session::finish_writing(std::uint64_t end_ticks, Ending ending) {
    const bool before_exec = ending == Ending::kExec || ending == Ending::kExecMayFail;
    written_for_exec_ = ending == Ending::kExecOfAnother;
    finished_ = true;
    part_left_ = PartLeft::kNone;
    // A root's children find it by its entry until it has collected them; an image about
    // to exec keeps it for the next (the same pid and start time).
    struct Unregister {
        bool keep;
        ~Unregister() {
            if (!keep) unregister_root();
        }
    } unregister{before_exec};
    if (!writer_) return true;
    finish_started_ = std::chrono::steady_clock::now();
    const std::vector<ThreadBuffer*> all = buffers();
    // Before an exec this image leaves its part for the next, in the parts directory (one
    // of its own for a process that writes its own file); only such a part can be taken
    // back should the exec fail.
    const bool leaves_part =
        before_exec && plan_.role != ProcessRole::kUntraced && keep_parts_for_next_image(plan_);
    const bool resumable = ending == Ending::kExecMayFail && leaves_part;
    // What went to a device or a pipe at -o cannot: the writer keeps nothing to go on with,
    // and resume_after_exec() says why.
    const bool stream_ok =
        ended_before_exec_ || writer_->finish(all, end_ticks, process_name_,
                                              resumable && stream_->reopens_for_each_write());
    ProcessRole role = plan_.role;
    if (leaves_part && role != ProcessRole::kChild) {
        mark_started(plan_.parts_dir, pid_, nonce_);
        role = ProcessRole::kChild;
    }
    switch (role) {
        case ProcessRole::kUntraced:
            return true;
        case ProcessRole::kChild: {
            // A child that outlived its root's wait (the root has reported it incomplete and
            // removed the parts directory): nothing is left to write to, nothing to say, and
            // the program's exit status stays its own.
            struct stat parts {};
            if (::stat(plan_.parts_dir.c_str(), &parts) != 0 && errno == ENOENT) {
                stream_->discard();
                return finish_result_ = true;
            }
            // A root about to exec leaves its stream where its next image will find it; one
            // writing to a device or a pipe at -o leaves an empty stream (its bytes went
            // there already), and the device or pipe stays where it is.
            const std::string stream = stream_path(plan_.parts_dir, pid_, nonce_);
            std::string error = stream_ok ? std::string() : writer_->error();
            if (resumable && !stream_->reopens_for_each_write()) {
                // A device or a pipe at -o keeps its descriptor (closed by the exec): should
                // the exec fail, the root still appends its children's parts there.
                if (!create_empty(stream) && error.empty()) {
                    error = fmt::format("cannot write '{}': {}", stream, std::strerror(errno));
                }
            } else if (stream_->path() == stream || !stream_->reopens_for_each_write()) {
                if (!stream_->commit()) {
                    if (error.empty()) error = stream_->error();
                } else if (stream_->path() != stream && !create_empty(stream) && error.empty()) {
                    error = fmt::format("cannot write '{}': {}", stream, std::strerror(errno));
                }
            } else if (!stream_->commit_as(stream) && error.empty()) {
                error = stream_->error();
            }
            if (error.empty() &&
                !write_summary(part_path(plan_.parts_dir, pid_, nonce_), summary(), error)) {
                // said below
            }
            if (!error.empty()) {
                say("vztrace: error: process %d: %s\n", static_cast<int>(pid_), error.c_str());
                // The root then says it could not write it, not that it was killed.
                std::ofstream(failed_marker_path(plan_.parts_dir, pid_, nonce_)).flush();
                finish_result_ = false;
            } else {
                const bool by_root = plan_.role != ProcessRole::kChild;
                if (resumable) {
                    part_left_ = by_root ? PartLeft::kByRootResumable : PartLeft::kByChildResumable;
                } else if (leaves_part && by_root) {
                    part_left_ = PartLeft::kByRoot;
                }
            }
            return finish_result_;
        }
        case ProcessRole::kOwnFile:
        case ProcessRole::kRoot:
            break;
    }
    if (!stream_ok) {
        say("vztrace: error: %s\n", writer_->error().c_str());
        stream_->discard();  // the user's file at -o stays as it was
        if (!stream_temp_.empty()) ::unlink(stream_temp_.c_str());
        if (!plan_.parts_dir.empty()) remove_parts_dir(plan_.parts_dir);
        return finish_result_ = false;
    }
    CollectedParts children;
    if (!plan_.parts_dir.empty()) {  // a root's, or the images' of one writing its own file
        // Helpers such as multiprocessing's resource tracker and forkserver end when the
        // root's end of their pipe closes: the root is ending, so its pipes go now
        // (vztrace's descriptor on its stream is closed by now, but a device's or a pipe's
        // at -o).
        // Before an exec the descriptors are the next program's, and the children are
        // not waited for: under python the exec is at once.
        if (role == ProcessRole::kRoot && !written_for_exec_) {
            release_pipes_and_sockets(stream_->descriptor());
        }
        const std::chrono::milliseconds wait = written_for_exec_ ? std::chrono::milliseconds(0)
                                               : hurried_        ? kChildWaitAfterSignal
                                                                 : kChildWait;
        struct stat found {};
        const bool removed = ::stat(plan_.parts_dir.c_str(), &found) != 0 && errno == ENOENT;
        children =
            collect_parts(plan_.parts_dir, pid_, wait, signalled_, kChildWaitAfterSignal, true);
        // Its children are collected: no child finds it from here on, and one that finds
        // the parts directory gone knows that the root has ended (Session::open_stream).
        if (!before_exec) unregister_root();
        if (removed && role == ProcessRole::kRoot) {  // the parts went, nothing said (hunt AU)
            children.errors.push_back(fmt::format(
                "the directory of the child processes' traces ('{}') was removed while the "
                "program ran: what its children recorded is not in the trace",
                plan_.parts_dir));
        }
        if (signalled_ != nullptr && signalled_()) hurried_ = true;
        for (const auto& error : children.errors) {
            if (!settings_.quiet) say("vztrace: warning: %s\n", error.c_str());
        }
    }
    finish_result_ = write_trace(children);
    if (!stream_temp_.empty()) ::unlink(stream_temp_.c_str());
    if (!plan_.parts_dir.empty()) remove_parts_dir(plan_.parts_dir);
    return finish_result_;
}

bool Session::resume_after_exec() {
    const PartLeft left = std::exchange(part_left_, PartLeft::kNone);
    const bool resumable =
        left == PartLeft::kByChildResumable || left == PartLeft::kByRootResumable;
    if (!resumable || !writer_) return false;
    const bool by_root = left == PartLeft::kByRootResumable;
    const bool resumed = writer_->resume();
    if (!resumed) {
        // What went to a device or a pipe at -o cannot be taken back.
        const std::string why =
            writer_->failed() ? writer_->error() : "the trace goes to a device or a pipe";
        say("vztrace: error: process %d: an exec failed and the recording cannot go on (%s): "
            "the calls after it are not in the trace\n",
            static_cast<int>(pid_), why.c_str());
        if (!by_root) return false;  // a child's part stays as it is, complete
        // The root's recording has ended, but its trace is still to be written at its end,
        // with its children's parts and the metadata, onto what its stream holds.
        ended_before_exec_ = true;
        ::unlink(stream_path(plan_.parts_dir, pid_, nonce_).c_str());
    }
    // The next image would have read these: the part is this image's again.
    ::unlink(part_path(plan_.parts_dir, pid_, nonce_).c_str());
    if (by_root) ::unlink(started_marker(plan_.parts_dir, pid_, nonce_).c_str());
    finished_ = false;
    finish_result_ = true;
    return resumed;
}

void Session::exec_of_another_failed() {
    if (!std::exchange(written_for_exec_, false) || settings_.quiet) return;
    say("vztrace: warning: process %d: the exec of another program failed after the trace "
        "was written for it: the calls from here on are not in the trace\n",
        static_cast<int>(pid_));
}

void Session::set_process_name(std::string_view name) { process_name_ = format::valid_utf8(name); }

std::vector<std::pair<std::string, std::string>> Session::metadata(
    const CollectedParts& children, const StreamCounts& totals, bool memory_limit_reached) const {
    std::vector<std::int64_t> incomplete;
    for (const auto& part : children.parts) {
        if (!part.summary) incomplete.push_back(part.pid);
    }
    const auto list = [](const std::vector<std::int64_t>& pids) {
        return fmt::format("[{}]", fmt::join(pids, ","));
    };
    std::uint64_t subinterpreter_count = 0;
    std::vector<std::int64_t> subinterpreter_pids;
    for (const auto& [pid, count] : subinterpreters(children)) {
        subinterpreter_count += count;
        subinterpreter_pids.push_back(pid);
    }
    return {
        {"version", json_text(info_.vztrace_version)},
        {"python", json_text(info_.python_version)},
        {"hook", json_text(info_.hook)},
        {"clock", json_text(to_string(TickClock::source()))},
        {"format", json_text(format_ == TraceFormat::kPerfetto ? "perfetto" : "json")},
        {"compressed", settings_.compress && format_ == TraceFormat::kPerfetto ? "true" : "false"},
        {"realtime_offset_ns", std::to_string(TickClock::realtime_offset_ns())},
        {"processes", std::to_string(process_count(children))},
        {"missing_pids", list(children.missing_pids)},
        {"incomplete_pids", list(incomplete)},
        {"killed_before_start_pids", list(children.killed_before_start_pids)},
        {"events", std::to_string(totals.events)},
        {"slices", std::to_string(totals.calls)},
        {"unfinished_calls", std::to_string(totals.unfinished)},
        {"dropped_events", std::to_string(totals.not_recorded)},
        {"size_cap_reached", totals.size_cap_reached ? "true" : "false"},
        {"memory_refused", totals.memory_refused ? "true" : "false"},
        {"max_size", std::to_string(settings_.max_size)},
        {"memory_limit_reached", memory_limit_reached ? "true" : "false"},
        {"ring", std::to_string(settings_.ring)},
        {"overwritten_events", std::to_string(totals.overwritten)},
        {"max_memory", std::to_string(settings_.max_memory)},
        {"subinterpreters", std::to_string(subinterpreter_count)},
        {"subinterpreter_pids", list(subinterpreter_pids)},
    };
}

bool Session::write_trace(CollectedParts& children) {
    const ProcessSummary self = summary();
    StreamCounts totals = self.counts;
    bool memory_limit_reached = self.memory_limit_reached;
    for (const auto& part : children.parts) {
        if (!part.summary) continue;
        totals.events += part.summary->counts.events;
        totals.calls += part.summary->counts.calls;
        totals.unfinished += part.summary->counts.unfinished;
        totals.not_recorded += part.summary->counts.not_recorded;
        totals.overwritten += part.summary->counts.overwritten;
        totals.size_cap_reached |= part.summary->counts.size_cap_reached;
        totals.memory_refused |= part.summary->counts.memory_refused;
        memory_limit_reached |= part.summary->memory_limit_reached;
    }
    std::uint64_t bytes = 0;
    std::string error;
    if (format_ == TraceFormat::kPerfetto) {
        for (const auto& part : children.parts) {
            if (!append_part(part, *stream_, error, totals)) {
                if (!error.empty() && !settings_.quiet) {
                    say("vztrace: warning: process %lld: %s\n", static_cast<long long>(part.pid),
                        error.c_str());
                }
                error.clear();
                if (!stream_->ok()) break;
            }
        }
        std::vector<std::pair<std::string, std::string>> values;
        for (const auto& [key, value] : metadata(
                 children, totals, memory_limit_reached)) {  // strings without their JSON quotes
            values.emplace_back("vztrace." + key, value.size() >= 2 && value.front() == '"'
                                                      ? value.substr(1, value.size() - 2)
                                                      : value);
        }
        format::ByteBuffer packets;
        format::append_metadata(next_sequence_id(plan_.parts_dir), values, packets);
        if (!stream_->write(packets.view()) || !stream_->commit()) error = stream_->error();
        bytes = stream_->bytes_written();
    } else {
        // Read back through the descriptor that wrote it: the program may have removed its
        // name, in the parts directory, with the rest of $TMPDIR (a cleanup of the temporary
        // directory), and then the trace was lost and the status 74, where python's was 0.
        const int own_stream = stream_->reopen_for_reading();  // -1: by its name
        stream_->commit();  // closes the stream: it is read back now
        OutputFile out(plan_.output, OutputFile::Placement::kWhenComplete, reader_wait());
        format::ChromeJsonEncoder json([&out](std::string_view text) { return out.write(text); });
        bool ok = out.ok() && json.add_stream(stream_->path(), false, own_stream);
        if (own_stream >= 0) ::close(own_stream);
        for (const auto& part : children.parts) {
            if (!ok) break;
            if (!json.add_stream(part.stream, !part.summary) && out.ok() && !settings_.quiet) {
                say("vztrace: warning: process %lld: %s\n", static_cast<long long>(part.pid),
                    json.error().c_str());
            }
            ok = out.ok();
        }
        totals.calls = json.slices();
        totals.unfinished = json.unfinished();
        ok = ok && json.finish(metadata(children, totals, memory_limit_reached)) && out.commit();
        if (!ok) error = out.ok() ? json.error() : out.error();
        bytes = out.bytes_written();
    }
    if (!error.empty()) {
        say("vztrace: error: %s\n", error.c_str());
        stream_->discard();
        return false;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - finish_started_).count();
    if (settings_.quiet) return true;
    if (!info_.hook_misses.empty()) {
        say("vztrace: warning: --hook frame is not exact here (%s); --hook auto is\n",
            info_.hook_misses.c_str());
    }
    if (totals.not_recorded > 0 && totals.size_cap_reached) {
        say("vztrace: warning: the trace reached --max-size %s; %llu events were not "
            "recorded\n",
            human_bytes(settings_.max_size).c_str(),
            static_cast<unsigned long long>(totals.not_recorded));
    } else if (totals.not_recorded > 0) {
        say("vztrace: warning: the system refused memory for records (a limit on the address "
            "space?); %llu events were not recorded\n",
            static_cast<unsigned long long>(totals.not_recorded));
    } else if (totals.memory_refused && totals.overwritten == 0) {
        say("vztrace: warning: the system refused vztrace memory (a limit on the address "
            "space?); the recording stopped there, and the calls after it are not in the "
            "trace\n");
    }
    if (totals.overwritten > 0) {
        const std::string ring = settings_.ring_calls > 0
                                     ? fmt::format("--tracer_entries {}", settings_.ring_calls)
                                     : fmt::format("--ring {}", human_bytes(settings_.ring));
        if (totals.memory_refused) {  // the ring wrapped where the system refused it memory
            say("vztrace: warning: the system refused memory for the ring (%s; a limit on the "
                "address space?): it kept the newest events it had room for; %llu older "
                "events were overwritten\n",
                ring.c_str(), static_cast<unsigned long long>(totals.overwritten));
        } else {
            say("vztrace: the ring (%s) kept the newest events; %llu older events were "
                "overwritten\n",
                ring.c_str(), static_cast<unsigned long long>(totals.overwritten));
        }
    }
    if (settings_.log_sparse && totals.calls == 0) {
        say("vztrace: warning: --log-sparse recorded no call: only functions decorated with "
            "@vztrace.sparse are recorded, and none of them ran\n");
    }
    if (const auto created = subinterpreters(children); !created.empty()) {
        std::uint64_t count = 0;
        std::vector<std::int64_t> pids;
        for (const auto& [pid, n] : created) {
            count += n;
            pids.push_back(pid);
        }
        const std::string where =
            children.parts.empty() ? ""
                                   : fmt::format(" (in process{} {})", pids.size() == 1 ? "" : "es",
                                                 fmt::join(pids, ", "));
        say("vztrace: warning: the program created %llu subinterpreter%s%s; vztrace records "
            "the main interpreter only, so the calls run in %s are not in the trace\n",
            static_cast<unsigned long long>(count), count == 1 ? "" : "s", where.c_str(),
            count == 1 ? "it" : "them");
    }
    for (const std::int64_t pid : children.missing_pids) {
        const bool failed = std::find(children.failed_pids.begin(), children.failed_pids.end(),
                                      pid) != children.failed_pids.end();
        say("vztrace: warning: process %lld left no trace (%s)\n", static_cast<long long>(pid),
            failed ? "it could not write it; its error is above" : "killed or crashed");
    }
    for (const auto& part : children.parts) {
        if (part.summary) continue;
        say("vztrace: warning: process %lld %s; its trace is incomplete (kept up to its "
            "last written events)\n",
            static_cast<long long>(part.pid),
            part.still_running ? (written_for_exec_ ? "was still running when this one exec'd"
                                  : hurried_        ? "was still running 1 s after the signal"
                                                    : "was still running after 10 s")
            : part.failed      ? "could not write its trace to the end (its error is above)"
                               : "was killed or crashed");
    }
    const std::size_t count = process_count(children);
    const std::string processes = count == 1 ? "" : fmt::format(" from {} processes", count);
    const std::string how =
        format_ == TraceFormat::kPerfetto
            ? "open it at https://ui.perfetto.dev (or with Perfetto's trace_processor when it is "
              "too large for a browser)"
            : "open it at https://ui.perfetto.dev or with vizviewer";
    say("vztrace: wrote %llu calls%s (%s, finished in %.3f s) to %s; %s\n",
        static_cast<unsigned long long>(totals.calls), processes.c_str(),
        human_bytes(bytes).c_str(), seconds, plan_.output.c_str(), how.c_str());
    return true;
}

}  // namespace vztrace::tracer
