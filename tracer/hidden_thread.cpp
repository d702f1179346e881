#include "tracer/hidden_thread.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace vztrace::tracer {

void* HiddenThread::trampoline(void* raw) {
    auto* self = static_cast<HiddenThread*>(raw);
    self->tid_.store(static_cast<pid_t>(::syscall(SYS_gettid)));
    self->body_(self->argument_);
    return nullptr;
}

bool HiddenThread::start(Body body, void* argument, bool beside_caller) {
    if (running_.load()) return true;
    body_ = body;
    argument_ = argument;
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);  // the thread takes no signal itself
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, std::size_t{256} << 10);
    if (const int cpu = beside_caller ? sched_getcpu() : -1; cpu >= 0) {
        cpu_set_t here;
        CPU_ZERO(&here);
        CPU_SET(cpu, &here);
        pthread_attr_setaffinity_np(&attr, sizeof here, &here);
    }
    const bool ok = pthread_create(&thread_, &attr, trampoline, this) == 0;
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    running_.store(ok);
    return ok;
}

void HiddenThread::wait_until_reaped() {
    // pthread_join returns once the thread has left its stack; the kernel counts it among
    // the process's threads until it is reaped a moment later, when it can no longer be
    // signalled.
    while (::syscall(SYS_tgkill, ::getpid(), tid_.load(), 0) == 0) sched_yield();
}

bool HiddenThread::try_join() {
    if (!running_.load()) return true;
    if (pthread_tryjoin_np(thread_, nullptr) != 0) return false;
    running_.store(false);
    wait_until_reaped();
    return true;
}

void HiddenThread::join_blocking() {
    if (!running_.exchange(false)) return;
    pthread_join(thread_, nullptr);
    wait_until_reaped();
}

}  // namespace vztrace::tracer
