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
#include "tracer/process_tree.hpp"
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
    Session(TraceSettings settings, TreePlan plan, CaptureInfo info);
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

    const TreePlan& plan() const { return plan_; }

    // Tells the root this process exists (a child's started marker), once a terminating
    // signal would leave killed_marker() (empty unless this process is a child).
    void announce();
    std::string killed_marker() const;

    // In a forked child: the parent's records are the parent's. Starts empty, with the
    // child's pid and place in the tree. Returns whether the child is traced.
    bool restart_after_fork();

    // Takes the end anchor and builds this process's capture; buffers stay owned by the
    // session.
    ProcessCapture capture(std::uint64_t end_ticks);

    // Ends this process's recording as its role says: the root writes the trace (with the
    // parts of its children) and prints the one-line summary unless quiet; a child leaves
    // its part. Calls still open are closed at `end_ticks`. Returns false if the trace
    // could not be written (the reason is printed). Runs once; later calls return the
    // first result. `before_exec`: the process becomes another program, which (when it is
    // vztrace) goes on recording, so even the root only leaves a part.
    bool finish(std::uint64_t end_ticks, bool before_exec = false);

    // Ends the recording with nothing written: the program never began (python could not
    // find it), so the user's file stays as it was. Says so on stderr unless quiet.
    void abandon();

 private:
    [[gnu::noinline]] ThreadBuffer& attach_current_thread();

    bool write_trace(Capture& trace, const std::string& output);

    TraceSettings settings_;
    TreePlan plan_;
    CaptureInfo info_;
    pid_t pid_;
    std::uint64_t nonce_;  // names this process image in the parts directory
    bool finished_ = false;
    bool finish_result_ = true;
    ClockAnchor start_anchor_;
    MemoryBudget budget_;
    SymbolTable symbols_;
    std::mutex threads_mutex_;
    std::vector<std::unique_ptr<ThreadBuffer>> threads_;
    std::string process_name_;
};

// Closes every descriptor from `first` on (the process is ending).
void close_descriptors_from(int first);

// Kernel thread id of the caller.
std::uint64_t current_tid();

}  // namespace vztrace::tracer
