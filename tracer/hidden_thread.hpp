// HiddenThread: a thread of vztrace's that the program cannot see. It takes no signals,
// has a small stack, and once joined is gone from the kernel's count of the process's
// threads (CPython reads /proc/self/stat to warn about forking a multi-threaded process),
// so it can be stopped before os.fork() and started again after without a trace.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>

namespace vztrace::tracer {

class HiddenThread {
 public:
    using Body = void (*)(void* argument);

    // Runs `body(argument)` on a new thread, without waiting for it to be scheduled (a
    // cross-CPU wake-up, 0.04-0.07 ms on this team's VM). Until it has run, body and
    // argument must stay as they are: start() is not called again before the thread is
    // joined. A thread still starting may hold an allocator lock, which a fork would leave
    // taken for good in the child when the allocator has no fork handlers (the sanitizers'
    // have not): every user of this class joins its thread before os.fork() (the at-fork
    // hooks), and a join waits for the thread to have run.
    // `beside_caller`: the thread may run only on the CPU the caller is on now, for a
    // thread that sleeps until it is needed (the signal helper): when the process ends, the
    // kernel wakes it there to end it, where waking it on another CPU and tearing the
    // process down from there cost 0.1-0.15 ms of each traced start in this team's VM.
    bool start(Body body, void* argument, bool beside_caller = false);
    // Joins it if its body has returned; false (still running) otherwise.
    bool try_join();
    // Waits for the thread with pthread_join only (it may take a while to return).
    void join_blocking();
    // In a forked child: the parent's thread is not here.
    void forget() { running_.store(false); }
    bool running() const { return running_.load(); }
    pid_t tid() const { return tid_.load(); }

 private:
    static void* trampoline(void* self);
    void wait_until_reaped();

    pthread_t thread_{};
    std::atomic<pid_t> tid_{0};
    std::atomic<bool> running_{false};
    Body body_ = nullptr;
    void* argument_ = nullptr;
};

}  // namespace vztrace::tracer
