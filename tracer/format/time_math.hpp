// Arithmetic on times read from a trace, in nanoseconds. The readers keep every time within
// 2^61 ns (73 years) either side of the clock's zero, so a difference of two fits in 64 bits;
// sums of many lengths (a function's total, a stack's) may not, and stop at the largest value
// instead of wrapping negative.
#pragma once

#include <cstdint>

namespace vztrace::format {

// Times a trace may hold either side of its clock's zero.
inline constexpr std::int64_t kLongestTime = std::int64_t{1} << 61;
// Readings of the clocks a trace relates its own to (CLOCK_REALTIME), and their offsets
// from it: CLOCK_REALTIME passes 2^61 ns in February 2043, 2^62 in 2116. A time plus such
// an offset still fits in 64 bits.
inline constexpr std::int64_t kLongestOffset = std::int64_t{1} << 62;

inline void add_saturating(std::int64_t& sum, std::int64_t ns) {
    if (__builtin_add_overflow(sum, ns, &sum)) sum = ns < 0 ? INT64_MIN : INT64_MAX;
}

inline std::int64_t sum_saturating(std::int64_t a, std::int64_t b) {
    add_saturating(a, b);
    return a;
}

// A call's length: 0 if its end is before its begin, the largest int64 past it.
inline std::int64_t length_ns(std::int64_t begin_ns, std::int64_t end_ns) {
    std::int64_t ns = 0;
    if (__builtin_sub_overflow(end_ns, begin_ns, &ns)) return end_ns < begin_ns ? 0 : INT64_MAX;
    return ns < 0 ? 0 : ns;
}

}  // namespace vztrace::format
