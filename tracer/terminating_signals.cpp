#include <Python.h>

#include "tracer/terminating_signals.hpp"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace vztrace::tracer::signals {
namespace {

enum State : int {
    kOff,        // vztrace handles no signal in this process
    kRunning,    // a signal goes to the thread, which ends the recording
    kFinishing,  // the trace is being written: a signal waits for the end
    kFinished,   // a signal kills the process at once
};

constexpr int kSignals[] = {SIGTERM, SIGHUP};

FinishFn g_finish = nullptr;
sigset_t g_handled;  // those of kSignals whose handler is vztrace's
std::atomic<int> g_state{kOff};
std::atomic<int> g_deferred{0};
std::atomic<pid_t> g_owner{0};  // the process the thread belongs to
// The handler wakes the thread with sem_post (async-signal-safe). No descriptor: the
// program may close any (a daemon closes them all), and a number it reuses must never
// be written or read by vztrace.
sem_t g_wake;
std::atomic<int> g_pending{0};  // the signal the thread is woken for
std::atomic<bool> g_thread_stop{false};
// The relay: a real-time signal whose Python-level handler is vztrace's. Tripping it
// (PyErr_SetInterruptEx, async-signal-safe) makes the main thread stop at its next
// bytecode boundary, on every Python version, without a Python handler for SIGTERM itself.
int g_relay = 0;
std::atomic<int> g_relayed{0};  // the terminating signal the relay stands for

thread_local sigset_t t_blocked_for_fork;  // those this thread had not blocked itself
thread_local bool t_fork_blocked = false;

// Async-signal-safe: the default action, unblocked, raised at this thread.
[[noreturn]] void die_of(int signum) {
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(signum, &action, nullptr);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, signum);
    pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
    raise(signum);
    _exit(128 + signum);  // not reached: both signals terminate by default
}

void on_signal(int signum) {
    const int saved_errno = errno;
    if (::getpid() != g_owner.load()) die_of(signum);  // forked outside os.fork()
    switch (g_state.load()) {
        case kRunning:
            g_relayed.store(signum);
            if (g_relay != 0) PyErr_SetInterruptEx(g_relay);
            g_pending.store(signum);
            sem_post(&g_wake);
            break;
        case kFinishing:
            g_deferred.store(signum);
            break;
        default:
            die_of(signum);
    }
    errno = saved_errno;
}

bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing() != 0;
#else
    return _Py_IsFinalizing() != 0;
#endif
}

// Ends the recording and the process, with the GIL held, on whichever thread gets there
// first: the main thread at its next bytecode boundary (the relay's handler), or vztrace's
// thread once the GIL is free (the main thread blocked in C, or not running Python).
[[noreturn]] void finish_and_die(int signum) {
    if (g_state.load() == kRunning) {
        g_finish();
        die_of(signum);
    }
    // Another thread is writing the trace: it delivers the signal once done.
    g_deferred.store(signum);
    while (g_state.load() == kFinishing) ::pause();
    die_of(signum);
}

PyObject* on_relay(PyObject*, PyObject*) {
    const int signum = g_relayed.load();
    // Nothing relayed: someone sent the real-time signal itself, which kills by default.
    if (signum == 0 || g_state.load() != kRunning) die_of(signum == 0 ? g_relay : signum);
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
    if (g_relay == 0) return;
    PyObject* module = PyImport_ImportModule("_signal");
    PyObject* sig_dfl = module != nullptr ? PyObject_GetAttrString(module, "SIG_DFL") : nullptr;
    if (sig_dfl != nullptr) {
        Py_XDECREF(PyObject_CallMethod(module, "signal", "iO", g_relay, sig_dfl));
    }
    Py_XDECREF(sig_dfl);
    Py_XDECREF(module);
    PyErr_Clear();
    g_relay = 0;
}

void handle(int signum) {
    while (true) {
        const int state = g_state.load();
        if (state == kRunning && !interpreter_finalizing()) {
            PyGILState_Ensure();  // never released: the process ends below
            finish_and_die(signum);
        }
        if (state == kRunning || state == kFinishing) {
            // The interpreter is shutting down, or the trace is being written: the
            // writing ends with end_finishing(), which then delivers the signal.
            g_deferred.store(signum);
            if (g_state.load() == state) return;
            continue;  // the state moved on meanwhile: look again
        }
        die_of(signum);
    }
}

void* signal_thread(void* started) {
    sem_post(static_cast<sem_t*>(started));  // gone from here on
    while (true) {
        if (sem_wait(&g_wake) != 0) {
            if (errno == EINTR) continue;
            return nullptr;
        }
        if (g_thread_stop.load()) return nullptr;
        const int signum = g_pending.exchange(0);
        if (signum != 0) handle(signum);
    }
}

void stop_thread() {
    g_thread_stop.store(true);
    sem_post(&g_wake);
}

// A thread for this process (in a forked child, the parent's is not there). False when
// it cannot be had.
bool start_thread() {
    g_thread_stop.store(false);
    g_pending.store(0);
    sem_init(&g_wake, 0, 0);
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);  // the thread takes no signal itself
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, std::size_t{256} << 10);
    sem_t running;
    sem_init(&running, 0, 0);
    pthread_t thread;
    const bool started = pthread_create(&thread, &attr, signal_thread, &running) == 0;
    // Wait until the thread runs: a thread still starting up may hold a lock of the
    // allocator's, and a fork() at that moment (the program's first statement may be
    // one) would leave the child with that lock taken for good when the allocator has
    // no fork handlers (the sanitizers' do not).
    while (started && sem_wait(&running) != 0 && errno == EINTR) {
    }
    sem_destroy(&running);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (started) g_owner.store(::getpid());
    return started;
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

}  // namespace

void install(FinishFn finish) {
    sigemptyset(&g_handled);
    g_finish = finish;
    bool any_default = false;
    for (const int signum : kSignals) {
        struct sigaction current {};
        if (sigaction(signum, nullptr, &current) == 0 && !(current.sa_flags & SA_SIGINFO) &&
            current.sa_handler == SIG_DFL) {
            sigaddset(&g_handled, signum);
            any_default = true;
        }
    }
    if (!any_default || !start_thread()) {
        sigemptyset(&g_handled);
        return;
    }
    g_relay = install_relay();
    g_state.store(kRunning);
    for (const int signum : kSignals) {
        if (sigismember(&g_handled, signum) != 1) continue;
        struct sigaction action {};
        action.sa_handler = on_signal;
        sigemptyset(&action.sa_mask);
        // SA_RESTART: the program's own system calls see no EINTR it would not have seen
        // without vztrace; the process ends all the same.
        action.sa_flags = SA_ONSTACK | SA_RESTART;
        sigaction(signum, &action, nullptr);
    }
}

void uninstall() {
    if (g_state.load() == kOff) return;
    restore_defaults();
    uninstall_relay();
    stop_thread();
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
}

namespace {
void unblock_after_fork() {
    if (!t_fork_blocked) return;
    t_fork_blocked = false;
    pthread_sigmask(SIG_UNBLOCK, &t_blocked_for_fork, nullptr);
}
}  // namespace

void after_fork_in_parent() { unblock_after_fork(); }

void after_fork_in_child() {
    if (g_state.load() != kOff) {
        // The parent's thread is not in the child: it gets its own.
        g_deferred.store(0);
        if (start_thread()) {
            g_state.store(kRunning);
        } else {
            restore_defaults();
        }
    }
    unblock_after_fork();
}

void begin_finishing() {
    int running = kRunning;
    g_state.compare_exchange_strong(running, kFinishing);
}

void end_finishing() {
    int finishing = kFinishing;
    if (!g_state.compare_exchange_strong(finishing, kFinished)) return;
    const int deferred = g_deferred.exchange(0);
    if (deferred != 0) die_of(deferred);
}

}  // namespace vztrace::tracer::signals
