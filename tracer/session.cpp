#include "tracer/session.hpp"

#include <fmt/format.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>

#include "tracer/chrome_json_writer.hpp"
#include "tracer/output_file.hpp"

namespace vztrace::tracer {
namespace {

std::string human_bytes(std::uint64_t bytes) {
    if (bytes >= (std::uint64_t{1} << 30)) return fmt::format("{:.1f} GB", bytes / 1073741824.0);
    if (bytes >= (std::uint64_t{1} << 20)) return fmt::format("{:.1f} MB", bytes / 1048576.0);
    if (bytes >= 1024) return fmt::format("{:.1f} kB", bytes / 1024.0);
    return fmt::format("{} bytes", bytes);
}

}  // namespace

std::uint64_t current_tid() { return static_cast<std::uint64_t>(::syscall(SYS_gettid)); }

Session::Session(TraceSettings settings, CaptureInfo info)
    : settings_(std::move(settings)),
      info_(std::move(info)),
      pid_(::getpid()),
      budget_(settings_.max_memory) {
    info_.clock = TickClock::select();
    info_.max_memory = settings_.max_memory;
    start_anchor_ = TickClock::anchor();
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

Capture Session::capture(std::uint64_t end_ticks) {
    const ClockAnchor end_anchor = TickClock::anchor();
    Capture result;
    result.symbols = symbols_.names();
    result.mapping = TickMapping(start_anchor_, end_anchor, info_.clock);
    result.end_ticks = end_ticks;
    info_.realtime_offset_ns = TickClock::realtime_offset_ns();
    info_.memory_cap_reached = budget_.exhausted();
    result.info = info_;
    ProcessCapture process;
    process.pid = pid_;
    process.name = process_name_;
    const std::lock_guard lock(threads_mutex_);
    for (const auto& buffer : threads_) {
        ThreadCapture thread;
        thread.tid = buffer->tid();
        thread.name = buffer->name().empty() ? fmt::format("Thread {}", buffer->tid())
                                             : buffer->name();
        thread.chunks = buffer->chunks();
        thread.dropped = buffer->dropped();
        process.threads.push_back(std::move(thread));
    }
    result.processes.push_back(std::move(process));
    return result;
}

bool Session::write_trace(std::uint64_t end_ticks) {
    const Capture trace = capture(end_ticks);
    const std::uint64_t dropped = count_dropped(trace);
    if (dropped > 0) {
        std::fprintf(stderr,
                     "vztrace: warning: the memory cap (--max-memory %s) was reached; %llu "
                     "events were not recorded\n",
                     human_bytes(settings_.max_memory).c_str(),
                     static_cast<unsigned long long>(dropped));
    }
    OutputFile file(settings_.output);
    WriteStats stats;
    if (!file.ok() || !ChromeJsonWriter().write(trace, file, stats)) {
        std::fprintf(stderr, "vztrace: error: %s\n", file.error().c_str());
        return false;
    }
    if (!settings_.quiet) {
        std::fprintf(stderr,
                     "vztrace: wrote %llu calls (%s) to %s; open it at https://ui.perfetto.dev "
                     "or with vizviewer\n",
                     static_cast<unsigned long long>(stats.slices),
                     human_bytes(stats.bytes).c_str(), settings_.output.c_str());
    }
    return true;
}

}  // namespace vztrace::tracer
