// Reads a Chrome JSON trace back (simdjson) for the tests' assertions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vztrace::testing {

struct TraceEvent {
    std::string name;
    std::int64_t ts_ns = 0;
    std::int64_t dur_ns = 0;
    std::int64_t pid = 0;
    std::int64_t tid = 0;
    bool unfinished = false;
    std::int64_t end_ns() const { return ts_ns + dur_ns; }
};

struct Trace {
    std::vector<TraceEvent> slices;                 // "X" events
    std::map<std::int64_t, std::string> threads;    // tid -> thread_name
    std::map<std::int64_t, std::string> processes;  // pid -> process_name
    std::map<std::string, std::string> metadata;    // vztrace_metadata, values as text

    std::size_t count(const std::string& name) const;
    std::size_t count_prefix(const std::string& prefix) const;
    std::vector<TraceEvent> named(const std::string& prefix) const;
    // Deepest nesting of slices whose name starts with `prefix` (1 = no recursion).
    int max_depth(const std::string& prefix) const;
    // Empty when every thread's slices nest properly; otherwise what is wrong.
    std::string nesting_problem() const;
};

// Throws std::runtime_error with simdjson's message when the file is not valid JSON.
Trace load_trace(const std::string& path);

}  // namespace vztrace::testing
