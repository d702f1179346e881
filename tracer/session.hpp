// Session: the recording of one process. It owns the per-thread buffers, the symbols and
// the clock anchors, and at the end hands them to a writer as a Capture. No Python.h:
// the hooks (tracer/python_hooks.cpp) feed it, and tests drive it directly.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tracer/capture.hpp"
#include "tracer/clock.hpp"
#include "tracer/settings.hpp"
#include "tracer/symbol_table.hpp"
#include "tracer/thread_buffer.hpp"

namespace vztrace::tracer {

class Session;

namespace detail {
// The calling thread's buffer; null until the thread's first event.
inline thread_local ThreadBuffer* t_buffer = nullptr;
}  // namespace detail

class Session {
   public:
    Session(TraceSettings settings, CaptureInfo info);
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // The calling thread's buffer, created at its first event.
    VZ_ALWAYS_INLINE ThreadBuffer& current_buffer() {
        ThreadBuffer* buffer = detail::t_buffer;
        if (VZ_LIKELY(buffer != nullptr)) return *buffer;
        return attach_current_thread();
    }

    SymbolTable& symbols() { return symbols_; }
    const TraceSettings& settings() const { return settings_; }
    CaptureInfo& info() { return info_; }
    pid_t pid() const { return pid_; }

    // Names the thread whose buffer has `tid` (a kernel thread id).
    void name_thread(std::uint64_t tid, std::string name);
    void set_process_name(std::string name) { process_name_ = std::move(name); }

    // Takes the end anchor and builds the Capture; buffers stay owned by the session.
    Capture capture(std::uint64_t end_ticks);

    // Writes the trace to settings().output and prints the one-line summary (unless
    // quiet); calls still open are closed at `end_ticks`. Returns false if the trace
    // could not be written (the reason is printed).
    bool write_trace(std::uint64_t end_ticks);

   private:
    [[gnu::noinline]] ThreadBuffer& attach_current_thread();

    TraceSettings settings_;
    CaptureInfo info_;
    pid_t pid_;
    ClockAnchor start_anchor_;
    MemoryBudget budget_;
    SymbolTable symbols_;
    std::mutex threads_mutex_;
    std::vector<std::unique_ptr<ThreadBuffer>> threads_;
    std::string process_name_;
};

// Kernel thread id of the caller.
std::uint64_t current_tid();

}  // namespace vztrace::tracer
