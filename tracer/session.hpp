// Session: the recording of one process. It owns the per-thread buffers, the chunk pool,
// the symbols and the writer that streams them to the process's trace file while the
// program runs; at the end it closes the stream and, in the root, assembles the trace of
// the whole process tree. No Python.h: the hooks (tracer/python_hooks.cpp) feed it, and
// tests drive it directly.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "tracer/chunk_pool.hpp"
#include "tracer/clock.hpp"
#include "tracer/output_file.hpp"
#include "tracer/process_tree.hpp"
#include "tracer/record_filter.hpp"
#include "tracer/settings.hpp"
#include "tracer/symbol_table.hpp"
#include "tracer/thread_buffer.hpp"
#include "tracer/trace_writer.hpp"

namespace vztrace::tracer {

namespace detail {
// The calling thread's buffer; null until the thread's first event.
inline thread_local ThreadBuffer* t_buffer = nullptr;
}  // namespace detail

// What the trace's metadata says of the recording, beyond its counts.
struct RecordingInfo {
    std::string vztrace_version;
    std::string python_version;
    std::string hook;         // "sys.monitoring (tool 5)" or "PyEval_SetProfile"
    std::string hook_misses;  // what a forced mechanism does not see ("": nothing)
};

class Session {
 public:
    Session(TraceSettings settings, TreePlan plan, RecordingInfo info);
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // The calling thread's buffer, created at its first event.
    VZ_ALWAYS_INLINE ThreadBuffer& current_buffer() {
        ThreadBuffer* buffer = detail::t_buffer;
        if (VZ_LIKELY(buffer != nullptr)) return *buffer;
        return attach_current_thread();
    }

    SymbolTable& symbols() { return symbols_; }

    // The system refused memory inside a callback (a limit on the address space): the
    // recording stops there, as at --max-size, and no exception reaches CPython (where it
    // would end the process with SIGABRT). `stop` is the hooks' own stop, which the session
    // calls when a thread's buffer cannot be made. Never throws.
    void on_memory_refused(void (*stop)()) { stop_recording_ = stop; }
    // How a wait for the reader of a fifo at -o runs (ReaderWait, after vztrace's notice):
    // the interpreter's side lets signals through and gives up on one that is to end the
    // process. Without it, the wait lasts until a reader comes.
    void on_reader_wait(void (*run)(const std::function<bool()>& try_open)) {
        run_reader_wait_ = run;
    }
    void stop_for_memory() noexcept;

    // The calling thread has ended (its function returned), while recording: its records go
    // to the writer, and its chunk back to the pool.
    void thread_ends() {
        if (ThreadBuffer* buffer = detail::t_buffer; buffer != nullptr && writer_) {
            writer_->thread_ends(*buffer);
        }
    }
    // The recording has stopped, and the trace is written at the process's very end (a
    // root's, after python's finalization): what the calling thread recorded is encoded
    // meanwhile (TraceWriter::wind_down).
    void recording_stopped() {
        if (writer_) writer_->wind_down(detail::t_buffer);
    }
    // vztrace.pause() / resume(), and --no-startup: calls begun while paused are left out
    // by the writer (record_filter.hpp).
    PauseWindows& pauses() { return pauses_; }
    // Whether --max-size has stopped the recording (what is recorded from then on is lost).
    bool size_cap_reached() const { return writer_ != nullptr && writer_->capped(); }
    // Whether what begins now is kept: not paused (vztrace.pause(), --no-startup's start-up)
    // and not stopped by --max-size. The reprs that only what begins would show (a call's
    // arguments, an audit event's, the API's) run the program's code: taken only then.
    bool keeps_what_begins_now() const { return !pauses_.paused() && !size_cap_reached(); }
    const TraceSettings& settings() const { return settings_; }
    RecordingInfo& info() { return info_; }
    pid_t pid() const { return pid_; }

    // Names the thread whose buffer has `tid` (a kernel thread id).
    void name_thread(std::uint64_t tid, std::string name);
    // Made valid UTF-8 (a name from argv may not be): the trace's strings all are.
    void set_process_name(std::string_view name);

    const TreePlan& plan() const { return plan_; }

    // Opens this process's stream and starts the writer thread. Returns why the stream
    // cannot be written (empty when fine).
    std::string start();

    // Tells the root this process exists (a child's started marker), once a terminating
    // signal would leave killed_marker() (empty unless this process is a child).
    void announce();
    std::string killed_marker() const;
    // The file the trace is written into until it is complete, beside the user's -o
    // (a root's or a process's own; a child's stream is in the parts directory): "" if none.
    std::string temporary_file() const;

    // Around os.fork(), with the GIL held: the writer thread stops (the program must see
    // no thread of vztrace's) and starts again after, in the parent.
    void pause_writer();
    void resume_writer();

    // In a forked child: the parent's records are the parent's. Starts empty, with the
    // child's pid, stream and place in the tree. `inherited`: the Python calls open at the
    // fork, outermost first, whose ends come in the child with no beginning. Returns
    // whether the child is traced.
    bool restart_after_fork(std::vector<SymbolId> inherited);

    // Ends this process's recording as its role says: the root writes the trace (with the
    // parts of its children) and prints the one-line summary unless quiet; a child leaves
    // its part. Calls still open are closed at `end_ticks`. Returns false if the trace
    // could not be written (the reason is printed). Runs once; later calls return the
    // first result. Before an exec the process becomes another program, which (when it is
    // vztrace) goes on recording, so even the root only leaves a part; an exec that may yet
    // fail leaves one that can be taken back (resume_after_exec). A root (or a process
    // writing its own file) about to exec a program known not to be vztrace writes its
    // trace, as at its end, with what its children have left so far (the exec waits for
    // none of them), and leaves the program's descriptors as they are (kExecOfAnother).
    enum class Ending { kEnd, kExec, kExecMayFail, kExecOfAnother };
    bool finish(std::uint64_t end_ticks, Ending ending = Ending::kEnd);

    // The exec that a resumable finish() came before failed: its part is taken back and the
    // recording goes on, as if it had never ended. False when it cannot (said on stderr,
    // unless there was nothing to take back): the recording has ended; a child's part stays,
    // and a root (writing to a device or a pipe) still writes its tree's trace at its end
    // (finished() is false again).
    bool resume_after_exec();
    // The exec that a kExecOfAnother finish() came before failed: the program goes on,
    // unrecorded, and stderr says so (unless quiet).
    void exec_of_another_failed();
    bool finished() const { return finished_; }
    // A root (or a process writing its own file) that finished before an exec left its part
    // for the next image (until resume_after_exec).
    bool left_part_for_next_image() const {
        return part_left_ == PartLeft::kByRoot || part_left_ == PartLeft::kByRootResumable;
    }
    // The file the stream is written into until the trace is complete (empty: none).
    std::string stream_file() const { return stream_ ? stream_->temporary_path() : std::string(); }

    // Ends the recording with nothing written: the program never began (python could not
    // find it, or ended while reading its configuration: -V, --help, a bad -X), so the
    // user's file stays as it was. Says so on stderr unless quiet; a child says nothing and
    // takes back its start marker, so that its root neither waits for it nor calls it
    // killed.
    void abandon();

    // A terminating signal ends this process: as a root it waits for its children a
    // second, not ten (see session.cpp).
    void hurry_children() { hurried_ = true; }
    // Whether a terminating signal came while this process writes its trace: a root then
    // waits a second more for its children at most.
    void hurry_children_when(bool (*signalled)()) { signalled_ = signalled; }

    // The program created an interpreter besides the main one (PEP 554's, or a C
    // extension's Py_NewInterpreter): vztrace's hooks are the main interpreter's, so the
    // calls run in it are not recorded, and the trace says so. Any thread, any interpreter.
    void note_subinterpreter() { subinterpreters_.fetch_add(1, std::memory_order_relaxed); }

 private:
    bool finish_writing(std::uint64_t end_ticks, Ending ending);
    [[gnu::noinline]] ThreadBuffer& attach_current_thread();
    ThreadBuffer& attach_locked();
    // Records held at once: the ring's size, else what may wait for the writer.
    std::uint64_t pool_limit() const {
        return settings_.ring > 0 ? settings_.ring : settings_.max_memory;
    }
    std::string open_stream();
    // Every thread's buffer, for the end: retired ones are freed no more from then on.
    std::vector<ThreadBuffer*> buffers();
    ProcessSummary summary() const;
    // The root's (or an own file's) trace from its stream and its children's parts.
    bool write_trace(CollectedParts& children);
    std::vector<std::pair<std::string, std::string>> metadata(const CollectedParts& children,
                                                              const StreamCounts& totals,
                                                              bool memory_limit_reached) const;
    // The processes in the trace: this one and its children's, not images (those of one
    // that exec'd share its pid).
    std::size_t process_count(const CollectedParts& children) const;
    // What each process that created subinterpreters created: (pid, how many).
    std::vector<std::pair<std::int64_t, std::uint64_t>> subinterpreters(
        const CollectedParts& children) const;

    TraceSettings settings_;
    TreePlan plan_;
    RecordingInfo info_;
    TraceFormat format_;
    pid_t pid_;
    std::uint64_t nonce_;  // names this process image in the parts directory
    bool finished_ = false;
    bool finish_result_ = true;
    // The part a finish() before an exec left for the next image, and whether that exec may
    // yet fail and the part be taken back (resume_after_exec). A root or a process writing
    // its own file leaves it in the place of a child, with a started marker of its own.
    enum class PartLeft { kNone, kByChildResumable, kByRoot, kByRootResumable };
    PartLeft part_left_ = PartLeft::kNone;
    // A root whose recording ended before an exec that failed, and could not go on: its
    // stream is complete, its tree's trace is yet to be written.
    bool ended_before_exec_ = false;
    // The trace was written before an exec of another program (kExecOfAnother).
    bool written_for_exec_ = false;
    ClockAnchor start_anchor_;
    SymbolTable symbols_;
    PauseWindows pauses_;
    std::unique_ptr<ChunkPool> pool_;
    std::unique_ptr<OutputFile> stream_;
    std::string stream_temp_;  // a JSON trace's stream, removed once converted
    std::unique_ptr<TraceWriter> writer_;
    std::mutex threads_mutex_;
    std::vector<std::unique_ptr<ThreadBuffer>> threads_;
    bool keep_retired_ = false;        // under threads_mutex_
    std::vector<SymbolId> inherited_;  // for the first thread a forked child records
    std::string process_name_;
    std::chrono::steady_clock::time_point finish_started_;
    bool hurried_ = false;
    bool (*signalled_)() = nullptr;
    std::atomic<std::uint64_t> subinterpreters_{0};
    void (*stop_recording_)() = nullptr;
    void (*run_reader_wait_)(const std::function<bool()>& try_open) = nullptr;
    ReaderWait reader_wait() const;
    // What a thread records into when its buffer could not be made: takes no chunk.
    struct RefusingSink final : ChunkSink {
        Chunk* chunk_full(ThreadBuffer&, Chunk*) override { return nullptr; }
    } refusing_sink_;
    std::unique_ptr<ThreadBuffer> spare_;
};

// The root is ending: the program's pipes and sockets (but `keep`) are let go, so that the
// helpers that wait for their end (multiprocessing's resource tracker and forkserver) end
// too. Their numbers stay taken, by /dev/null: a thread of the program's still using one
// (a C library's, without the GIL) must never reach a file vztrace opens next. Its files
// and everything else stay open, as under python until the process ends.
void release_pipes_and_sockets(int keep);

// Kernel thread id of the caller.
std::uint64_t current_tid();

}  // namespace vztrace::tracer
