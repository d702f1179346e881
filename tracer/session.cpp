#include "tracer/session.hpp"

#include <fmt/format.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "tracer/chrome_json_writer.hpp"
#include "tracer/output_file.hpp"
#include "tracer/part_file.hpp"

namespace vztrace::tracer {
namespace {

std::string human_bytes(std::uint64_t bytes) {
    if (bytes >= (std::uint64_t{1} << 30)) return fmt::format("{:.1f} GB", bytes / 1073741824.0);
    if (bytes >= (std::uint64_t{1} << 20)) return fmt::format("{:.1f} MB", bytes / 1048576.0);
    if (bytes >= 1024) return fmt::format("{:.1f} kB", bytes / 1024.0);
    return fmt::format("{} bytes", bytes);
}

}  // namespace

void close_descriptors_from(int first) {
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, first, ~0U, 0) == 0) return;
#endif
    const long limit = ::sysconf(_SC_OPEN_MAX);
    for (long fd = first; fd < (limit > 0 ? limit : 1024); ++fd) ::close(static_cast<int>(fd));
}

std::uint64_t current_tid() { return static_cast<std::uint64_t>(::syscall(SYS_gettid)); }

// How long the root waits, at its end, for children that are still running to leave
// their parts. A child that outlives it is reported missing.
constexpr std::chrono::milliseconds kChildWait{10000};

Session::Session(TraceSettings settings, TreePlan plan, CaptureInfo info)
    : settings_(std::move(settings)),
      plan_(std::move(plan)),
      info_(std::move(info)),
      pid_(::getpid()),
      nonce_(static_cast<std::uint64_t>(TickClock::monotonic_ns())),
      budget_(settings_.max_memory) {
    info_.clock = TickClock::select();
    info_.max_memory = settings_.max_memory;
    start_anchor_ = TickClock::anchor();
}

void Session::announce() {
    if (plan_.role == ProcessRole::kChild) mark_started(plan_.parts_dir, pid_, nonce_);
}

std::string Session::killed_marker() const {
    return plan_.role == ProcessRole::kChild ? killed_marker_path(plan_.parts_dir, pid_, nonce_)
                                             : std::string();
}

void Session::abandon() {
    if (finished_) return;
    finished_ = true;
    if (plan_.role == ProcessRole::kRoot && !plan_.parts_dir.empty()) {
        remove_parts_dir(plan_.parts_dir);
    }
    if (!settings_.quiet) {
        std::fprintf(stderr, "vztrace: no trace written: the program did not start\n");
    }
}

bool Session::restart_after_fork() {
    const std::lock_guard lock(threads_mutex_);
    threads_.clear();  // the parent's records (copy-on-write pages, never touched here)
    detail::t_buffer = nullptr;
    pid_ = ::getpid();
    nonce_ = static_cast<std::uint64_t>(TickClock::monotonic_ns());
    finished_ = false;
    finish_result_ = true;
    plan_ = plan_after_fork(plan_, settings_);
    if (plan_.role == ProcessRole::kChild) mark_started(plan_.parts_dir, pid_, nonce_);
    return plan_.role != ProcessRole::kUntraced;
}

ThreadBuffer& Session::attach_current_thread() {
    const std::lock_guard lock(threads_mutex_);
    const std::uint64_t tid = current_tid();
    threads_.push_back(std::make_unique<ThreadBuffer>(budget_, tid));
    if (static_cast<pid_t>(tid) == pid_) threads_.back()->set_name("MainThread");
    detail::t_buffer = threads_.back().get();
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

ProcessCapture Session::capture(std::uint64_t end_ticks) {
    const ClockAnchor end_anchor = TickClock::anchor();
    ProcessCapture process;
    process.pid = pid_;
    process.name = process_name_;
    process.symbols = symbols_.names();
    process.mapping = TickMapping(start_anchor_, end_anchor, info_.clock);
    process.end_ticks = end_ticks;
    info_.realtime_offset_ns = TickClock::realtime_offset_ns();
    info_.memory_cap_reached = budget_.exhausted();
    process.info = info_;
    const std::lock_guard lock(threads_mutex_);
    for (const auto& buffer : threads_) {
        ThreadCapture thread;
        thread.tid = buffer->tid();
        thread.name =
            buffer->name().empty() ? fmt::format("Thread {}", buffer->tid()) : buffer->name();
        thread.chunks = buffer->chunks();
        thread.dropped = buffer->dropped();
        process.threads.push_back(std::move(thread));
    }
    return process;
}

bool Session::finish(std::uint64_t end_ticks, bool before_exec) {
    if (finished_) return finish_result_;
    finished_ = true;
    Capture trace;
    trace.processes.push_back(capture(end_ticks));
    ProcessRole role = plan_.role;
    if (before_exec && role == ProcessRole::kRoot && !plan_.parts_dir.empty()) {
        mark_started(plan_.parts_dir, pid_, nonce_);
        role = ProcessRole::kChild;
    }
    switch (role) {
        case ProcessRole::kUntraced:
            return true;
        case ProcessRole::kChild: {
            OutputFile file(part_path(plan_.parts_dir, pid_, nonce_));
            if (!file.ok() || !write_part(trace.processes.front(), file)) {
                std::fprintf(stderr, "vztrace: error: process %d: %s\n", static_cast<int>(pid_),
                             file.error().c_str());
                finish_result_ = false;
            }
            return finish_result_;
        }
        case ProcessRole::kOwnFile:
            finish_result_ = write_trace(trace, plan_.output);
            return finish_result_;
        case ProcessRole::kRoot:
            break;
    }
    if (!plan_.parts_dir.empty()) {
        // Helpers such as multiprocessing's resource tracker and forkserver end when the
        // root's end of their pipe closes: the root is ending, so its descriptors go now.
        close_descriptors_from(3);
        CollectedParts children = collect_parts(plan_.parts_dir, pid_, kChildWait);
        for (auto& part : children.parts) trace.processes.push_back(std::move(part));
        trace.missing_pids = std::move(children.missing_pids);
        trace.killed_before_start_pids = std::move(children.killed_before_start_pids);
        for (const auto& error : children.errors) {
            if (!settings_.quiet) std::fprintf(stderr, "vztrace: warning: %s\n", error.c_str());
        }
        for (const std::int64_t pid : trace.missing_pids) {
            if (settings_.quiet) break;
            std::fprintf(stderr,
                         "vztrace: warning: process %lld left no trace (killed, crashed, or "
                         "still running after %lld s)\n",
                         static_cast<long long>(pid),
                         static_cast<long long>(kChildWait.count() / 1000));
        }
    }
    finish_result_ = write_trace(trace, plan_.output);
    if (!plan_.parts_dir.empty()) remove_parts_dir(plan_.parts_dir);
    return finish_result_;
}

bool Session::write_trace(Capture& trace, const std::string& output) {
    const std::uint64_t dropped = count_dropped(trace);
    if (dropped > 0 && !settings_.quiet) {
        std::fprintf(stderr,
                     "vztrace: warning: the memory cap (--max-memory %s) was reached; %llu "
                     "events were not recorded\n",
                     human_bytes(settings_.max_memory).c_str(),
                     static_cast<unsigned long long>(dropped));
    }
    OutputFile file(output);
    WriteStats stats;
    if (!file.ok() || !ChromeJsonWriter().write(trace, file, stats)) {
        std::fprintf(stderr, "vztrace: error: %s\n", file.error().c_str());
        return false;
    }
    if (!settings_.quiet) {
        const std::string processes =
            trace.processes.size() > 1 ? fmt::format(" from {} processes", trace.processes.size())
                                       : "";
        std::fprintf(stderr,
                     "vztrace: wrote %llu calls%s (%s in %.3f s) to %s; open it at "
                     "https://ui.perfetto.dev or with vizviewer\n",
                     static_cast<unsigned long long>(stats.slices), processes.c_str(),
                     human_bytes(stats.bytes).c_str(), stats.seconds, output.c_str());
    }
    return true;
}

}  // namespace vztrace::tracer
