// Small portability macros for the hot path.
#pragma once

#define VZ_LIKELY(x) __builtin_expect(!!(x), 1)
#define VZ_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define VZ_ALWAYS_INLINE inline __attribute__((always_inline))
