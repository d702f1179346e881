// SIGTERM and SIGHUP, when the program leaves them at their default: vztrace keeps the
// trace, then the process dies of the same signal, as it would without vztrace (status 143
// for SIGTERM). The program sees no handler of vztrace's: signal.getsignal() still says
// SIG_DFL, and a handler the program installs replaces vztrace's, as under python.
//
// The C-level handler does two async-signal-safe things. It trips a relay (a real-time
// signal whose Python-level handler is vztrace's), so the main thread ends the recording at
// its next bytecode boundary, as a Python handler for SIGTERM would. And it wakes a thread
// of vztrace's (sem_post), which takes the GIL as soon as it is free and does the same:
// Python handlers run only between bytecodes, so a signal that lands just before the main
// thread blocks in C (a pool worker's multiprocessing lock) would otherwise wait forever.
// Whichever comes first ends the process with the signal.
#pragma once

namespace vztrace::tracer::signals {

// Ends this process's recording and writes its trace or part; runs with the GIL held.
using FinishFn = void (*)();

// Takes over those of SIGTERM and SIGHUP still at SIG_DFL; call with the GIL held, once.
void install(FinishFn finish);

// This process is not traced after all (a child under --ignore-multiprocess): the
// signals go back to their default.
void uninstall();

// Around os.fork(): the signals are held back until the child has its own thread
// (CPython drops a signal a child caught before its at-fork code ran).
void before_fork();
void after_fork_in_parent();
void after_fork_in_child();

// The recording is ending: a signal from now on waits until the trace is written
// (end_finishing), then kills the process, instead of interrupting the writing.
void begin_finishing();
void end_finishing();

}  // namespace vztrace::tracer::signals
