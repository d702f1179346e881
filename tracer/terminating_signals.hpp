// SIGTERM, SIGHUP and the other signals that end a process by default from outside its
// own instructions (SIGQUIT, SIGALRM, SIGUSR1, SIGUSR2, SIGVTALRM, SIGPROF, SIGXCPU,
// SIGPWR, SIGIO; SIGINT and SIGPIPE once the program sets them to SIG_DFL), when the
// program leaves them at their default: vztrace keeps the trace, then the process dies of
// the same signal, as it would without vztrace (status 143 for SIGTERM). The program sees
// no handler of vztrace's: signal.getsignal() says SIG_DFL, a handler the program installs
// replaces vztrace's, and setting SIG_DFL again (or what getsignal returned) gives it
// back, as under python where SIG_DFL means "die".
//
// What a signal does depends on where the process is:
// - starting (before the program's first line): it dies at once, as python would, after
//   leaving a marker that tells the root it was killed before it ran (no part to wait for);
// - running: the C handler trips a relay (a real-time signal whose Python-level handler is
//   vztrace's), so the main thread ends the recording at its next bytecode boundary, and it
//   wakes a helper thread of vztrace's, which takes the GIL as soon as it is free and does
//   the same (a main thread blocked in C that no signal interrupts never reaches a
//   boundary). Whichever comes first writes the trace and ends the process;
// - stopped (the program's atexit work is done, the interpreter is finalizing): the
//   recording is complete, so the helper writes it without the GIL while the thread the
//   signal landed on waits in the handler; no more Python code runs, as under python;
// - writing the trace: the signal waits until the trace is written, then kills.
//
// The helper thread is invisible to the program: it is stopped before os.fork() and
// started again after (CPython counts the process's threads to warn about forking a
// multi-threaded process), it is in no thread list of the program's, holds no lock, and it
// is stopped when the program's last thread ends, so it never keeps a process alive.
#pragma once

#include <signal.h>

#include <functional>
#include <string>

namespace vztrace::tracer::signals {

// A terminating signal came while the trace is written: the process dies of it once the
// trace is complete. Async-signal-safe.
bool death_pending();
// A wait of vztrace's own (for the reader of a fifo at -o) is to end: a terminating signal
// is pending, or SIGTERM, SIGHUP or SIGQUIT came while the trace was written after a
// program that handled them in Python (such signals are ignored then). Async-signal-safe.
bool wait_stopped();

// Ends this process's recording and writes its trace or part. The first runs with the GIL
// held; the second needs no interpreter (the recording has stopped).
using FinishFn = void (*)();

// What a signal before program_starts() does (empty paths: none).
struct EarlyEnd {
    std::string killed_marker;  // left, for the root to know (a child's)
    // Removed: the file the trace is written into until it is complete, beside the user's
    // -o; a root's entry in the roots' registry, the tree's counters and its stream; and its
    // private directory, when that is empty then.
    std::string temporary;
    std::string registry_entry;
    std::string counters;
    std::string stream;  // the root's own stream in its private directory (a JSON trace's)
    std::string private_dir;
    // An image exec'd by a recorded one: the signal is kept until the program starts, and
    // ends the recording then (the earlier image's calls would be lost), nothing removed.
    bool keep_for_program = false;
};

// Before the interpreter exists: takes over those signals still at SIG_DFL (SIGINT aside,
// which CPython makes KeyboardInterrupt only where it finds SIG_DFL). A signal before
// program_starts() does what `end` says, and kills.
void install_early(const EarlyEnd& end);

// Holds those signals on the calling thread (the only one, before the interpreter exists)
// while it lives: from before the recording's temporary file exists until install_early
// knows it, a signal would leave it behind.
// One inside another holds nothing more: the outer one lets them go.
class HeldAtStart {
 public:
    HeldAtStart();
    ~HeldAtStart();
    HeldAtStart(const HeldAtStart&) = delete;
    HeldAtStart& operator=(const HeldAtStart&) = delete;
    // The image before this one held them across its exec (hold_across_exec): they are let
    // go at the end too, not kept held as this image found them.
    void held_by_earlier_image();

 private:
    sigset_t previous_{};
    bool outer_ = false;
};

// Right before an exec of vztrace by a recorded process whose part waits for the next image:
// holds those signals across the exec (a signal's default action in between would lose the
// recording; the next image keeps it for its program), unless the program holds any of them
// itself. True when held: after a failed exec, let_go_after_exec() lets them go again.
bool hold_across_exec();
void let_go_after_exec();
// The word an image that holds them across its exec adds to the next one's environment
// ("VZTRACE_SIGNALS_HELD=PID"); at the start of an image, whether the one before held them
// (its word, which is taken out). Where this image runs no program, let_go_after_exec() lets
// them go; one that runs a program lets them go with its HeldAtStart.
inline constexpr const char* kHeldWord = "VZTRACE_SIGNALS_HELD";
std::string held_word();
bool taken_from_earlier_image();
// Runs `run` with the signals a HeldAtStart holds let through (as it is when none lives):
// a wait for the reader of a fifo at -o, which makes no file, ends as python's start would
// on SIGTERM or Ctrl-C.
void run_unheld(const std::function<void()>& run);

// With the GIL held, right before the program runs: CPython's own view of those signals is
// made SIG_DFL again, the relay and the helper thread start, and signal.signal() is watched
// for SIG_DFL. `finish` runs with the GIL; `finish_stopped` without it.
void program_starts(FinishFn finish, FinishFn finish_stopped);

// This process is not traced after all (a child under --ignore-multiprocess): the
// signals go back to their default.
void uninstall();

// Around os.fork(), with the GIL held: the helper thread stops and the signals are held
// back until each side has its own thread again.
void before_fork();
void after_fork_in_parent();
// In the parent, once no at-fork hook is left to run (3.13 counts the process's threads
// after them): the helper thread starts again.
void start_helper_after_fork();
void after_fork_in_child();

// With the GIL held, the program's exit work done: the recording has stopped and waits to
// be written. A terminating signal whose handler is Python-level (the program's, SIGINT's
// KeyboardInterrupt) is vztrace's from now on: CPython resets it to SIG_DFL as it
// finalizes, and the process would die there without its trace.
void recording_stopped();

// The recording is ending: a signal from now on waits until the trace is written
// (end_finishing), then kills the process, instead of interrupting the writing. Returns
// false when another thread is already writing it.
bool begin_finishing();
void end_finishing();
// The exec that the recording ended for failed: it goes on, and a signal ends it again.
void recording_resumed();

// The program's last thread is ending without finalizing (a process forked from a thread
// other than the main one): the helper thread goes, so the process can end.
void stop_helper();

// For a thread without the GIL that ends the process (_exit or exit from C: faulthandler's
// watchdog, a C library's thread, ctypes, which lets the GIL go): takes the GIL, so the
// recording can end and be written, and keeps it. A terminating signal that comes
// meanwhile ends the process with `status` too, once its trace is written (python's had
// exited). Should the GIL not come within seconds (a thread holds it in C code that never
// ends), the process exits with `status_if_lost`, its trace unfinished (stderr says where
// what was written is). False, with nothing done, once the interpreter is finalizing.
bool take_gil_or_exit(int status, int status_if_lost);
// Where the trace is streamed until it is complete (beside -o; a JSON trace's stream in
// vztrace's private directory): stderr names it when the process ends without the trace.
void trace_streamed_to(const std::string& path);

}  // namespace vztrace::tracer::signals
