// HiddenThread: a thread started beside its caller may run on the caller's CPU only (the
// signal helper, which sleeps until a signal comes); one started otherwise may run where
// its caller may.
#include "tracer/hidden_thread.hpp"

#include <sched.h>

#include <catch2/catch.hpp>

using vztrace::tracer::HiddenThread;

namespace {

// The CPUs the calling thread may run on.
cpu_set_t allowed_here() {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    REQUIRE(sched_getaffinity(0, sizeof cpus, &cpus) == 0);
    return cpus;
}

void note_allowed(void* out) { *static_cast<cpu_set_t*>(out) = allowed_here(); }

}  // namespace

TEST_CASE("a hidden thread started beside its caller runs on one CPU, the caller's") {
    const cpu_set_t caller = allowed_here();
    cpu_set_t seen;
    HiddenThread thread;
    REQUIRE(thread.start(note_allowed, &seen, true));
    thread.join_blocking();
    CHECK(CPU_COUNT(&seen) == 1);
    bool among_callers = false;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &seen)) among_callers = CPU_ISSET(cpu, &caller) != 0;
    }
    CHECK(among_callers);
}

TEST_CASE("a hidden thread started otherwise may run wherever its caller may") {
    cpu_set_t caller = allowed_here();
    cpu_set_t seen;
    HiddenThread thread;
    REQUIRE(thread.start(note_allowed, &seen));
    thread.join_blocking();
    CHECK(CPU_EQUAL(&seen, &caller));
}
