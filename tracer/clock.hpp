// TickClock: the time source of every record.
//
// rdtsc costs about 10 ns alone and 1-2 ns inside a callback; clock_gettime(MONOTONIC)
// about 24 ns (shared/DESIGN.md). rdtsc is used only when the kernel's clocksource is tsc
// and the CPU has an invariant TSC, so ticks advance at one rate on every core. Ticks are
// mapped to CLOCK_MONOTONIC nanoseconds through anchor pairs, so every process of a tree
// shares one time axis.
#pragma once

#include <x86intrin.h>

#include <cstdint>
#include <ctime>
#include <string_view>

#include "tracer/compiler.hpp"

namespace vztrace::tracer {

enum class ClockSource { kTsc, kMonotonic };

std::string_view to_string(ClockSource source);

// One simultaneous reading of both clocks.
struct ClockAnchor {
    std::uint64_t ticks = 0;
    std::int64_t monotonic_ns = 0;
};

// Linear map from ticks to CLOCK_MONOTONIC nanoseconds between two anchors.
class TickMapping {
 public:
    TickMapping() = default;
    TickMapping(ClockAnchor first, ClockAnchor last, ClockSource source);
    std::int64_t to_ns(std::uint64_t ticks) const {
        const double delta = static_cast<double>(static_cast<std::int64_t>(ticks - base_.ticks));
        return base_.monotonic_ns + static_cast<std::int64_t>(delta * ns_per_tick_);
    }
    double ns_per_tick() const { return ns_per_tick_; }

 private:
    ClockAnchor base_;
    double ns_per_tick_ = 1.0;
};

class TickClock {
 public:
    // Chooses the source once, before any record is taken.
    static ClockSource select();
    // Forces a source (tests, and machines whose TSC is known to be bad).
    static void force(ClockSource source) { use_tsc_ = source == ClockSource::kTsc; }
    static ClockSource source() { return use_tsc_ ? ClockSource::kTsc : ClockSource::kMonotonic; }

    VZ_ALWAYS_INLINE static std::uint64_t now() {
        if (VZ_LIKELY(use_tsc_)) return __rdtsc();
        return static_cast<std::uint64_t>(monotonic_ns());
    }
    static std::int64_t monotonic_ns() {
        timespec ts{};
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
    }
    static ClockAnchor anchor();
    // CLOCK_REALTIME minus CLOCK_MONOTONIC, for the trace metadata.
    static std::int64_t realtime_offset_ns();

 private:
    static inline bool use_tsc_ = false;
};

}  // namespace vztrace::tracer
