#include <Python.h>

#include "tracer/terminating_signals.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <functional>

#include "tracer/hidden_thread.hpp"
#include "tracer/module_functions.hpp"
#include "tracer/profile_hooks.hpp"

namespace vztrace::tracer::signals {
namespace {

enum State : int {
    kOff,        // vztrace handles no signal in this process
    kStarting,   // the program has not started: a signal kills at once
    kRunning,    // a signal ends the recording (relay or helper thread), then kills
    kStopped,    // the recording has stopped: the helper writes it, then kills
    kFinishing,  // the trace is being written: a signal waits for the end
    kFinished,   // a signal kills the process at once
};

// The signals whose default action ends the process, a crash's aside (SIGSEGV, SIGBUS,
// SIGFPE, SIGILL, SIGTRAP, SIGSYS, and abort()'s SIGABRT: nothing more can run safely
// there, and SIGXFSZ: past RLIMIT_FSIZE, the trace could not be written either). Python
// leaves them at SIG_DFL but SIGINT (KeyboardInterrupt) and SIGPIPE (ignored), which vztrace
// takes once the program sets them to SIG_DFL, never at start-up: CPython only installs its
// own SIGINT handler where it finds SIG_DFL.
constexpr int kSignals[] = {SIGTERM, SIGHUP,  SIGQUIT, SIGALRM, SIGUSR1, SIGUSR2, SIGVTALRM,
                            SIGPROF, SIGXCPU, SIGPWR,  SIGIO,   SIGINT,  SIGPIPE};
bool taken_at_start(int signum) { return signum != SIGINT && signum != SIGPIPE; }
bool terminating(int signum) {
    for (const int each : kSignals) {
        if (each == signum) return true;
    }
    return false;
}

FinishFn g_finish = nullptr;
FinishFn g_finish_stopped = nullptr;
sigset_t g_handled;  // those of kSignals whose handler is vztrace's (changed with the GIL)
// Those vztrace took over from a Python-level handler as the recording stopped: ignored
// while the trace is written after Python is done (recording_stopped).
sigset_t g_program_handled;
std::atomic<int> g_state{kOff};
std::atomic<int> g_deferred{0};
std::atomic<bool> g_wait_stopped{false};  // see on_signal, kFinishing
std::atomic<pid_t> g_owner{0};            // the process the handler and the helper belong to
char g_killed_marker[PATH_MAX] = {};
char g_temporary[PATH_MAX] = {};  // removed by a signal before the program starts
// A root's files of the tree, removed with it by a signal before the program starts: its
// entry in the roots' registry, the tree's counters, its private directory (once empty).
char g_registry_entry[PATH_MAX] = {};
char g_counters[PATH_MAX] = {};
char g_stream[PATH_MAX] = {};
char g_private_dir[PATH_MAX] = {};
// An image exec'd by a recorded one: a signal before its program starts is kept for it
// (the earlier image's calls are in no trace until this one writes it), and raised again
// once the program starts, where it ends the recording as any would.
std::atomic<bool> g_keep_for_program{false};
std::atomic<int> g_kept_for_program{0};
std::atomic<bool> g_held_across_exec{false};  // see hold_across_exec
// The file the trace is streamed into until it is complete (trace_streamed_to): named on
// stderr when a watchdog ends the process without the trace.
char g_trace_so_far[PATH_MAX] = {};
// The status an exit from C asked for (-1: none) while its thread waits for the GIL: the
// process ends with it, not with a signal that comes meanwhile (python's had exited).
std::atomic<int> g_exit_pending{-1};

// The helper thread. The handler wakes it with sem_post (async-signal-safe). No
// descriptor: the program may close any (a daemon closes them all), and a number it
// reuses must never be written or read by vztrace.
sem_t g_wake;
std::atomic<int> g_pending{0};  // the signal the helper is woken for
std::atomic<bool> g_helper_stop{false};
std::atomic<bool> g_helper_busy{false};  // handling a signal: it may wait for the GIL
HiddenThread g_helper;

// The relay: a real-time signal whose Python-level handler is vztrace's. Tripping it
// (PyErr_SetInterruptEx, async-signal-safe) makes the main thread stop at its next
// bytecode boundary, on every Python version, without a Python handler for SIGTERM itself.
// The program never sees it (getsignal() says SIG_DFL); once the program sets that signal,
// it is the program's and vztrace gives the relay up (0), the helper thread alone ending
// the recording: tripped, it would run the program's handler, and at SIG_DFL or SIG_IGN
// CPython's PyErr_SetInterruptEx compares handler objects, which crashes without the GIL.
std::atomic<int> g_relay{0};
std::atomic<int> g_relayed{0};  // the terminating signal the relay stands for

thread_local sigset_t t_blocked_for_fork;  // those this thread had not blocked itself
thread_local bool t_fork_blocked = false;

// Async-signal-safe: the default action, unblocked, raised at this thread; or the exit
// from C that was asked for first.
[[noreturn]] void die_of(int signum) {
    if (const int status = g_exit_pending.load(); status >= 0) ::syscall(SYS_exit_group, status);
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(signum, &action, nullptr);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, signum);
    pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
    raise(signum);
    _exit(128 + signum);  // not reached: each of kSignals terminates by default
}

// Async-signal-safe: the root learns that this process was killed before it ran.
void leave_killed_marker(int signum) {
    if (g_killed_marker[0] == '\0') return;
    const int fd = ::open(g_killed_marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    char text[4] = {static_cast<char>('0' + signum / 10 % 10), static_cast<char>('0' + signum % 10),
                    '\n', '\0'};
    [[maybe_unused]] const ssize_t ignored = ::write(fd, text, 3);
    ::close(fd);
}

bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing() != 0;
#else
    return _Py_IsFinalizing() != 0;
#endif
}

// The first terminating signal is the one the process dies of, as under python, which
// dies of it at once: one that comes while the trace is written must not take its place.
void defer(std::atomic<int>& slot, int signum) {
    int none = 0;
    slot.compare_exchange_strong(none, signum);
}

void wake_helper(int signum) {
    defer(g_pending, signum);
    sem_post(&g_wake);
}

void on_signal(int signum) {
    const int saved_errno = errno;
    if (::getpid() != g_owner.load()) die_of(signum);  // forked outside os.fork()
    switch (g_state.load()) {
        case kStarting:
            // A second signal while one is kept is not kept: start-up code that never ends
            // (a .pth file waiting for good) cannot make the process deaf to SIGTERM.
            if (g_keep_for_program.load() && g_kept_for_program.load() == 0) {
                defer(g_kept_for_program, signum);
                break;
            }
            leave_killed_marker(signum);
            for (const char* path : {g_temporary, g_registry_entry, g_counters, g_stream}) {
                if (path[0] != '\0') ::unlink(path);
            }
            if (g_private_dir[0] != '\0') ::rmdir(g_private_dir);  // a child's part keeps it
            die_of(signum);
        case kRunning:
            // A write's SIGPIPE (a pipe nobody reads) on a thread that let the GIL go for the
            // write (as CPython's do): python would die inside it, so this thread goes no further,
            // and the helper takes the GIL, writes the trace and kills the process. A thread
            // holding the GIL (os.kill from Python, a C write that kept it) takes the relay
            // instead, which it reaches at its next bytecode boundary.
            if (signum == SIGPIPE && g_helper.running() && PyGILState_Check() == 0) {
                wake_helper(signum);
                while (true) ::pause();
            }
            defer(g_relayed, signum);
            // While the interpreter finalizes, Python-level handlers are gone: tripping
            // the relay then only makes CPython complain ("Signal N ignored due to race
            // condition") into the program's stderr.
            if (const int relay = g_relay.load(); relay != 0 && !interpreter_finalizing()) {
                PyErr_SetInterruptEx(relay);
            }
            wake_helper(signum);
            break;
        case kStopped:
            if (!g_helper.running()) die_of(signum);
            // The helper writes the trace and kills the process; this thread, which may be
            // the one running Python, goes no further.
            wake_helper(signum);
            while (true) ::pause();
        case kFinishing:
            if (sigismember(&g_program_handled, signum) != 1) {
                defer(g_deferred, signum);
            } else if (signum == SIGTERM || signum == SIGHUP || signum == SIGQUIT) {
                // Ignored (the program's handler would have run), but a wait of vztrace's
                // own, for a fifo's reader, is given up.
                g_wait_stopped.store(true);
            }
            break;
        default:
            die_of(signum);
    }
    errno = saved_errno;
}

// With the GIL held, on whichever thread gets there first: the main thread at its next
// bytecode boundary (the relay's handler), or the helper once the GIL is free.
[[noreturn]] void finish_and_die(int signum) {
    const int state = g_state.load();
    // The trace's end (end_finishing) delivers the first signal that asked for it.
    if (state == kRunning) {
        defer(g_deferred, signum);
        g_finish();
        die_of(signum);
    }
    if (state == kStopped && begin_finishing()) {
        defer(g_deferred, signum);
        g_finish_stopped();
        die_of(signum);
    }
    // Another thread is writing the trace: it delivers the signal once done.
    defer(g_deferred, signum);
    while (g_state.load() == kFinishing) ::pause();
    die_of(signum);
}

PyObject* on_relay(PyObject*, PyObject*) {
    const int signum = g_relayed.load();
    // Nothing relayed: someone sent the real-time signal itself, which kills by default.
    if (signum == 0) die_of(g_relay.load());
    finish_and_die(signum);
}
PyMethodDef g_relay_def = {"vztrace_signal_relay", on_relay, METH_VARARGS, nullptr};

// The first real-time signal, from the top, that nothing handles yet; its Python-level
// handler becomes vztrace's relay. 0 when there is none.
int install_relay() {
    PyObject* module = PyImport_ImportModule("_signal");
    PyObject* handler = module != nullptr ? PyCFunction_New(&g_relay_def, nullptr) : nullptr;
    int relay = 0;
    for (int signum = SIGRTMAX - 1; handler != nullptr && signum > SIGRTMAX - 8; --signum) {
        struct sigaction current {};
        if (sigaction(signum, nullptr, &current) != 0 || (current.sa_flags & SA_SIGINFO) ||
            current.sa_handler != SIG_DFL) {
            continue;
        }
        PyObject* previous = PyObject_CallMethod(module, "signal", "iO", signum, handler);
        if (previous != nullptr) relay = signum;
        Py_XDECREF(previous);
        break;
    }
    Py_XDECREF(handler);
    Py_XDECREF(module);
    PyErr_Clear();
    return relay;
}

void uninstall_relay() {
    const int relay = g_relay.exchange(0);
    if (relay == 0) return;
    PyObject* module = PyImport_ImportModule("_signal");
    PyObject* sig_dfl = module != nullptr ? PyObject_GetAttrString(module, "SIG_DFL") : nullptr;
    if (sig_dfl != nullptr) {
        Py_XDECREF(PyObject_CallMethod(module, "signal", "iO", relay, sig_dfl));
    }
    Py_XDECREF(sig_dfl);
    Py_XDECREF(module);
    PyErr_Clear();
}

// How long the helper waits for the GIL before the process dies of the signal without its
// trace: a thread that holds it in C code that never ends (a C loop over an endless
// iterator) would otherwise keep the process alive for good, where python dies at once.
constexpr int kGilWaitSeconds = 5;

// Sleeps out the wait on a thread of its own, all signals blocked.
void wait_for_gil_taker() {
    timespec left{kGilWaitSeconds, 0};
    while (::nanosleep(&left, &left) != 0 && errno == EINTR) {
    }
}

// The process ends without its trace: says where what was written of it is.
void say_trace_unfinished() {
    if (g_trace_so_far[0] == '\0') return;
    const char* parts[] = {"vztrace: error: the trace was not finished (a thread kept the GIL ",
                           "5 s after the process was to end); what was written of it is in ",
                           g_trace_so_far, "\n"};
    for (const char* part : parts) {
        [[maybe_unused]] const ssize_t ignored = ::write(STDERR_FILENO, part, std::strlen(part));
    }
}

// Once the wait is over with the recording's end not begun, the process dies of `signum`.
// It never returns otherwise (the process ends).
void* gil_watchdog(void* argument) {
    const int signum = static_cast<int>(reinterpret_cast<std::intptr_t>(argument));
    wait_for_gil_taker();
    if (g_state.load() == kRunning) {
        say_trace_unfinished();
        die_of(signum);
    }
    return nullptr;  // the trace is being written: its end delivers the signal
}

// take_gil_or_exit's: set once the exiting thread has the GIL.
std::atomic<bool> g_exit_has_gil{false};

// Once the wait is over with the exiting thread still waiting, the process exits as python
// would have at once, but with the status for a trace not written (the one asked for, or 74
// for a 0), after one line naming the file that holds what was written of the trace.
void* exit_watchdog(void* argument) {
    const int status = static_cast<int>(reinterpret_cast<std::intptr_t>(argument));
    wait_for_gil_taker();
    if (!g_exit_has_gil.load()) {
        say_trace_unfinished();
        // The system call itself: _exit is vztrace's stand-in, which would wait for the GIL.
        ::syscall(SYS_exit_group, status);
    }
    return nullptr;
}

void start_watchdog(void* (*watchdog)(void*), int value) {
    sigset_t all;
    sigfillset(&all);
    sigset_t previous;
    pthread_sigmask(SIG_SETMASK, &all, &previous);  // the new thread inherits the mask
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    pthread_create(&thread, &attributes, watchdog,
                   reinterpret_cast<void*>(static_cast<std::intptr_t>(value)));
    pthread_attr_destroy(&attributes);
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

// The recording ended for an exec of vztrace that holds the signals (hold_across_exec)
// while this signal was on its way: sent again, it waits, held, for the next image, which
// keeps it for its program (or for this image, once the exec has failed and the recording
// goes on). Ending the process here lost the trace: the part left for the next image was
// never written into it.
bool pass_to_next_image(int signum) {
    if (!g_held_across_exec.load()) return false;
    ::kill(::getpid(), signum);
    return true;
}

void handle(int signum) {
    while (true) {
        const int state = g_state.load();
        if (state == kRunning && !interpreter_finalizing()) {
            start_watchdog(gil_watchdog, signum);
            profile::t_vztrace_thread = true;  // not a thread of the program's
            // Never released, the process ending below, but where the signal is passed on.
            const PyGILState_STATE gil = PyGILState_Ensure();
            if (g_state.load() != kRunning && pass_to_next_image(signum)) {
                PyGILState_Release(gil);
                return;
            }
            finish_and_die(signum);
        }
        if (state == kStopped) finish_and_die(signum);  // needs no GIL
        if (state == kRunning || state == kFinishing) {
            // The interpreter is shutting down with the recording still on (the program
            // removed vztrace's atexit work), or the trace is being written: the writing
            // ends with end_finishing(), which then delivers the signal.
            defer(g_deferred, signum);
            if (g_state.load() == state) return;
            continue;  // the state moved on meanwhile: look again
        }
        if (pass_to_next_image(signum)) return;
        die_of(signum);
    }
}

void helper_thread(void*) {
    while (true) {
        if (sem_wait(&g_wake) != 0) {
            if (errno == EINTR) continue;
            return;
        }
        // A signal first: a stop request that comes with one must not lose it.
        const int signum = g_pending.exchange(0);
        if (signum != 0) {
            g_helper_busy.store(true);
            handle(signum);
            g_helper_busy.store(false);
        }
        if (g_helper_stop.load()) return;
    }
}

void start_helper() {
    if (g_helper.running()) return;
    static const bool wake_ready = sem_init(&g_wake, 0, 0) == 0;  // never destroyed
    if (!wake_ready) return;
    g_helper_stop.store(false);
    g_helper.start(helper_thread, nullptr, true);  // it sleeps until a signal comes
}

// With the GIL held, which is kept: letting it go would let the program's other threads
// run at a moment python gives them none (a fork from a thread while the main thread
// could begin finalizing). Only a helper handling a signal may need the GIL, and then the
// process is ending anyway.
void join_helper() {
    if (!g_helper.running()) return;
    g_helper_stop.store(true);
    sem_post(&g_wake);
    while (!g_helper.try_join()) {
        if (g_helper_busy.load()) {
            PyThreadState* saved = PyEval_SaveThread();
            g_helper.join_blocking();
            PyEval_RestoreThread(saved);
            return;
        }
        sched_yield();  // it is waking up from sem_wait: a few microseconds
    }
}

bool wants_helper() {
    const int state = g_state.load();
    return state == kRunning || state == kStopped;
}

void take_over(int signum) {
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    // No SA_RESTART: a system call the signal interrupts returns EINTR, so CPython's own
    // retry loops (PEP 475) run the relay's handler at once instead of waiting.
    action.sa_flags = SA_ONSTACK;
    sigaction(signum, &action, nullptr);
    sigaddset(&g_handled, signum);
}

// Handles the signals in g_handled from now on: the relay, the helper thread.
void start_handling() {
    if (g_relay.load() == 0) g_relay.store(install_relay());
    g_owner.store(::getpid());
    g_state.store(kRunning);
    start_helper();
}

void restore_defaults() {
    for (const int signum : kSignals) {
        if (sigismember(&g_handled, signum) != 1) continue;
        struct sigaction action {};
        action.sa_handler = SIG_DFL;
        sigemptyset(&action.sa_mask);
        sigaction(signum, &action, nullptr);
    }
    sigemptyset(&g_handled);
    g_state.store(kOff);
}

// signal.signal(): CPython's, then vztrace takes one of kSignals over again when the
// program sets it to SIG_DFL (under python that means "die"; without vztrace's handler the
// process would die with no trace).
PyObject* g_original_signal = nullptr;

// Whether `number` names the relay's signal while it is vztrace's.
bool is_relay(PyObject* number) {
    const int relay = g_relay.load();
    if (relay == 0 || !PyLong_Check(number)) return false;
    const long signum = PyLong_AsLong(number);
    PyErr_Clear();
    return signum == relay;
}

PyObject* relay_given_up(PyObject* const* args, Py_ssize_t nargs) {
    const int relay = g_relay.exchange(0);  // before CPython's handler changes
    PyObject* previous = PyObject_Vectorcall(g_original_signal, args, nargs, nullptr);
    if (previous == nullptr) {
        g_relay.store(relay);  // refused: the relay's handler is still in place
        return nullptr;
    }
    Py_DECREF(previous);
    return PyLong_FromLong(0);  // vztrace took it at SIG_DFL
}

PyObject* signal_watched(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs == 2 && is_relay(args[0])) return relay_given_up(args, nargs);
    PyObject* previous = PyObject_Vectorcall(g_original_signal, args, nargs, nullptr);
    if (previous == nullptr || nargs != 2 || !PyLong_Check(args[0])) return previous;
    const long signum = PyLong_AsLong(args[0]);
    if (signum <= 0 || signum > INT_MAX || !terminating(static_cast<int>(signum))) return previous;
    const int state = g_state.load();
    if (state == kStarting || state == kFinished) return previous;
    const bool to_default = PyLong_Check(args[1]) && PyLong_AsLong(args[1]) == 0;  // SIG_DFL
    PyErr_Clear();
    if (!to_default) {
        sigdelset(&g_handled, static_cast<int>(signum));  // CPython's handler replaced ours
        return previous;
    }
    // Also once the recording has stopped (a finalizer that puts back the SIG_DFL it found):
    // at the kernel's SIG_DFL, the signal killed vztrace while it wrote the trace, which was
    // lost, its temporary file left behind.
    take_over(static_cast<int>(signum));
    sigdelset(&g_program_handled, static_cast<int>(signum));  // the program's word: it kills
    if (state == kOff) start_handling();
    return previous;
}

PyMethodDef g_signal_def = {
    "signal", reinterpret_cast<PyCFunction>(+signal_watched), METH_FASTCALL,
    "signal($module, signalnum, handler, /)\n--\n\nSet the action for the given signal."};

PyObject* g_original_getsignal = nullptr;

PyObject* getsignal_watched(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs == 1 && is_relay(args[0])) return PyLong_FromLong(0);
    return PyObject_Vectorcall(g_original_getsignal, args, nargs, nullptr);
}

PyMethodDef g_getsignal_def = {
    "getsignal", reinterpret_cast<PyCFunction>(+getsignal_watched), METH_FASTCALL,
    "getsignal($module, signalnum, /)\n--\n\nReturn the current action for the given signal."};

void watch_signal_function(PyObject* module) {
    Py_XDECREF(replace_module_function(module, "_signal", g_signal_def, g_original_signal));
    Py_XDECREF(replace_module_function(module, "_signal", g_getsignal_def, g_original_getsignal));
}

}  // namespace

namespace {
const sigset_t* g_mask_before_held = nullptr;  // while a HeldAtStart lives

sigset_t taken_at_start_set() {
    sigset_t set;
    sigemptyset(&set);
    for (const int signum : kSignals) {
        if (taken_at_start(signum)) sigaddset(&set, signum);
    }
    return set;
}
}  // namespace

HeldAtStart::HeldAtStart() {
    if (g_mask_before_held != nullptr) return;  // held already: the outer one lets them go
    const sigset_t held = taken_at_start_set();
    pthread_sigmask(SIG_BLOCK, &held, &previous_);
    g_mask_before_held = &previous_;
    outer_ = true;
}

HeldAtStart::~HeldAtStart() {
    if (!outer_) return;
    g_mask_before_held = nullptr;
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

void HeldAtStart::held_by_earlier_image() {
    if (!outer_) return;
    for (const int signum : kSignals) {
        if (taken_at_start(signum)) sigdelset(&previous_, signum);
    }
}

bool hold_across_exec() {
    sigset_t current;
    if (pthread_sigmask(SIG_SETMASK, nullptr, &current) != 0) return false;
    for (const int signum : kSignals) {
        if (taken_at_start(signum) && sigismember(&current, signum) == 1) return false;
    }
    const sigset_t held = taken_at_start_set();
    if (pthread_sigmask(SIG_BLOCK, &held, nullptr) != 0) return false;
    g_held_across_exec.store(true);
    return true;
}

bool taken_from_earlier_image() {
    // The earlier image's word names this process: any other value is not vztrace's word
    // (one the program or its caller set), and stays.
    const char* word = std::getenv(kHeldWord);
    if (word == nullptr || std::to_string(::getpid()) != word) return false;
    ::unsetenv(kHeldWord);
    return true;
}

std::string held_word() { return std::string(kHeldWord) + "=" + std::to_string(::getpid()); }

void let_go_after_exec() {
    g_held_across_exec.store(false);
    const sigset_t held = taken_at_start_set();
    pthread_sigmask(SIG_UNBLOCK, &held, nullptr);
}

void run_unheld(const std::function<void()>& run) {
    if (g_mask_before_held == nullptr) {
        run();
        return;
    }
    sigset_t held;
    pthread_sigmask(SIG_SETMASK, g_mask_before_held, &held);
    run();
    pthread_sigmask(SIG_SETMASK, &held, nullptr);
}

void install_early(const EarlyEnd& end) {
    sigemptyset(&g_handled);
    sigemptyset(&g_program_handled);
    const auto keep = [](const std::string& path, char(&into)[PATH_MAX]) {
        if (path.size() < sizeof into) std::memcpy(into, path.c_str(), path.size() + 1);
    };
    keep(end.killed_marker, g_killed_marker);
    keep(end.temporary, g_temporary);
    keep(end.registry_entry, g_registry_entry);
    keep(end.counters, g_counters);
    keep(end.stream, g_stream);
    keep(end.private_dir, g_private_dir);
    g_keep_for_program.store(end.keep_for_program);
    g_owner.store(::getpid());
    for (const int signum : kSignals) {
        if (!taken_at_start(signum)) continue;
        struct sigaction current {};
        if (sigaction(signum, nullptr, &current) == 0 && !(current.sa_flags & SA_SIGINFO) &&
            current.sa_handler == SIG_DFL) {
            take_over(signum);
        }
    }
    if (!sigisemptyset(&g_handled)) g_state.store(kStarting);
}

void program_starts(FinishFn finish, FinishFn finish_stopped) {
    g_finish = finish;
    g_finish_stopped = finish_stopped;
    g_killed_marker[0] = '\0';
    g_temporary[0] = '\0';  // from now on the recording's end removes it
    g_registry_entry[0] = g_counters[0] = g_stream[0] = g_private_dir[0] = '\0';
    PyObject* module = PyImport_ImportModule("_signal");
    if (module == nullptr) {
        PyErr_Clear();
        return;
    }
    watch_signal_function(module);
    if (g_state.load() == kStarting) {
        // CPython read the handlers when it imported _signal during start-up and took
        // vztrace's for a foreign one (getsignal() would say None): it is told SIG_DFL,
        // then vztrace's handler goes back, with the signals held meanwhile.
        sigset_t previous;
        pthread_sigmask(SIG_BLOCK, &g_handled, &previous);
        for (const int signum : kSignals) {
            if (sigismember(&g_handled, signum) != 1) continue;
            // Start-up code (sitecustomize, a .pth file) that set a handler of its own or
            // SIG_IGN keeps it (SIG_DFL is vztrace's to take, as from the program).
            struct sigaction current {};
            if (sigaction(signum, nullptr, &current) != 0 || (current.sa_flags & SA_SIGINFO) ||
                (current.sa_handler != on_signal && current.sa_handler != SIG_DFL)) {
                sigdelset(&g_handled, signum);
                continue;
            }
            if (g_original_signal != nullptr) {
                Py_XDECREF(PyObject_CallFunction(g_original_signal, "ii", signum, 0));
                PyErr_Clear();
            }
            take_over(signum);
        }
        start_handling();
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        // A signal kept from start-up (an exec'd image's) ends the recording now.
        g_keep_for_program.store(false);
        if (const int signum = g_kept_for_program.exchange(0); signum != 0) ::raise(signum);
    }
    Py_DECREF(module);
}

void uninstall() {
    if (g_state.load() == kOff) return;
    restore_defaults();
    uninstall_relay();
    join_helper();
}

void before_fork() {
    if (g_state.load() == kOff) return;
    sigset_t before;
    if (pthread_sigmask(SIG_BLOCK, &g_handled, &before) != 0) return;
    sigemptyset(&t_blocked_for_fork);
    for (const int signum : kSignals) {
        if (sigismember(&g_handled, signum) == 1 && sigismember(&before, signum) == 0) {
            sigaddset(&t_blocked_for_fork, signum);
        }
    }
    t_fork_blocked = true;
    join_helper();
}

namespace {
void unblock_after_fork() {
    if (!t_fork_blocked) return;
    t_fork_blocked = false;
    pthread_sigmask(SIG_UNBLOCK, &t_blocked_for_fork, nullptr);
}
}  // namespace

void after_fork_in_parent() { unblock_after_fork(); }

void start_helper_after_fork() {
    if (wants_helper()) start_helper();
}

void after_fork_in_child() {
    g_helper.forget();  // the parent's thread is not in the child
    if (g_state.load() != kOff) {
        g_deferred.store(0);
        g_owner.store(::getpid());
        if (wants_helper()) start_helper();
    }
    unblock_after_fork();
}

namespace {
// Whether CPython's handler for `signum` is a Python callable (not SIG_DFL, SIG_IGN or
// None, a handler set outside Python).
bool python_level_handler(int signum) {
    if (g_original_getsignal == nullptr || g_original_signal == nullptr) return false;
    PyObject* handler = PyObject_CallFunction(g_original_getsignal, "i", signum);
    const bool callable = handler != nullptr && !PyLong_Check(handler) && handler != Py_None &&
                          PyCallable_Check(handler) != 0;
    Py_XDECREF(handler);
    PyErr_Clear();
    return callable;
}
}  // namespace

void recording_stopped() {
    int running = kRunning;
    if (!g_state.compare_exchange_strong(running, kStopped)) return;
    // CPython's finalization resets a Python-level handler to SIG_DFL (_PySignal_Fini), and
    // between the end of the exit work and that reset it runs Python code only for the odd
    // destructor: from here on such a signal kills by its default action, as under python,
    // now after the trace is written. But once Python is done and vztrace writes the trace
    // or waits for children (kFinishing, up to seconds), python's process would have ended
    // with the program's status: such a signal is ignored then (a heartbeat timer never
    // disarmed, a supervisor's pings killed it), SIGINT, the user's interrupt, aside.
    for (const int signum : kSignals) {
        if (sigismember(&g_handled, signum) == 1 || !python_level_handler(signum)) continue;
        PyObject* previous = PyObject_CallFunction(g_original_signal, "ii", signum, 0);
        if (previous != nullptr) {
            take_over(signum);
            if (signum != SIGINT) sigaddset(&g_program_handled, signum);
        }
        Py_XDECREF(previous);
        PyErr_Clear();
    }
}

bool begin_finishing() {
    int state = g_state.load();
    while (state == kRunning || state == kStopped) {
        if (g_state.compare_exchange_weak(state, kFinishing)) return true;
    }
    return state != kFinishing;
}

void end_finishing() {
    // A signal kept for a program that never started (start-up code exited): the trace is
    // written, and the process dies of it now.
    if (const int kept = g_kept_for_program.exchange(0); kept != 0) {
        g_keep_for_program.store(false);
        die_of(kept);
    }
    int finishing = kFinishing;
    if (!g_state.compare_exchange_strong(finishing, kFinished)) return;
    const int deferred = g_deferred.exchange(0);
    if (deferred != 0) die_of(deferred);
}

bool death_pending() { return g_deferred.load() != 0; }

bool wait_stopped() { return death_pending() || g_wait_stopped.load(); }

void recording_resumed() {
    int finished = kFinished;
    g_state.compare_exchange_strong(finished, kRunning);
}

void stop_helper() { join_helper(); }

void trace_streamed_to(const std::string& path) {
    if (path.size() < sizeof g_trace_so_far) {
        std::memcpy(g_trace_so_far, path.c_str(), path.size() + 1);
    }
}

bool take_gil_or_exit(int status, int status_if_lost) {
    if (interpreter_finalizing()) return false;
    int none = -1;
    g_exit_pending.compare_exchange_strong(none, status);
    start_watchdog(exit_watchdog, status_if_lost);
    profile::t_vztrace_thread = true;  // this thread's calls are not the program's now
    PyGILState_Ensure();               // never released: the process ends
    g_exit_has_gil.store(true);
    return true;
}

}  // namespace vztrace::tracer::signals
