#include "tracer/clock.hpp"

#include <cpuid.h>

#include <fstream>
#include <string>

namespace vztrace::tracer {
namespace {

bool cpu_has_invariant_tsc() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(0x80000000U, &eax, &ebx, &ecx, &edx) == 0 || eax < 0x80000007U) return false;
    __get_cpuid(0x80000007U, &eax, &ebx, &ecx, &edx);
    return (edx & (1U << 8)) != 0;
}

bool kernel_clocksource_is_tsc() {
    std::ifstream file("/sys/devices/system/clocksource/clocksource0/current_clocksource");
    std::string name;
    return file >> name && name == "tsc";
}

}  // namespace

std::string_view to_string(ClockSource source) {
    return source == ClockSource::kTsc ? "tsc" : "clock_gettime(CLOCK_MONOTONIC)";
}

TickMapping::TickMapping(ClockAnchor first, ClockAnchor last, ClockSource source) : base_(first) {
    if (source == ClockSource::kTsc && last.ticks > first.ticks &&
        last.monotonic_ns > first.monotonic_ns) {
        ns_per_tick_ = static_cast<double>(last.monotonic_ns - first.monotonic_ns) /
                       static_cast<double>(last.ticks - first.ticks);
    } else if (source == ClockSource::kMonotonic) {
        base_ = ClockAnchor{0, 0};  // ticks are nanoseconds already
        ns_per_tick_ = 1.0;
    }
}

ClockSource TickClock::select() {
    force(cpu_has_invariant_tsc() && kernel_clocksource_is_tsc() ? ClockSource::kTsc
                                                                 : ClockSource::kMonotonic);
    return source();
}

ClockAnchor TickClock::anchor() {
    // The monotonic reading sits between two tick readings; the tighter the pair, the
    // better. A few tries pick the narrowest of them.
    ClockAnchor best;
    std::uint64_t best_width = ~std::uint64_t{0};
    for (int i = 0; i < 5; ++i) {
        const std::uint64_t before = now();
        const std::int64_t mono = monotonic_ns();
        const std::uint64_t after = now();
        if (after - before < best_width) {
            best_width = after - before;
            best = ClockAnchor{before + (after - before) / 2, mono};
        }
    }
    return best;
}

std::int64_t TickClock::realtime_offset_ns() {
    timespec real{};
    clock_gettime(CLOCK_REALTIME, &real);
    const std::int64_t mono = monotonic_ns();
    return std::int64_t{real.tv_sec} * 1'000'000'000 + real.tv_nsec - mono;
}

}  // namespace vztrace::tracer
