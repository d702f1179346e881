// What the user asked of the tracer. Plain data, filled by the launcher.
#pragma once

#include <cstdint>
#include <string>

namespace vztrace::tracer {

inline constexpr std::uint64_t kDefaultMaxMemory = std::uint64_t{1} << 30;  // 1 GiB of records

struct TraceSettings {
    std::string output = "result.json";  // absolute once the launcher has resolved it
    bool quiet = false;
    bool ignore_c_function = false;
    std::uint64_t max_memory = kDefaultMaxMemory;  // bytes of event records, then stop
    bool ignore_multiprocess = false;              // trace the root process only
    bool pid_suffix = false;                       // one file per process, named with its pid
    std::string output_dir;                        // one file per process, in this directory
};

}  // namespace vztrace::tracer
