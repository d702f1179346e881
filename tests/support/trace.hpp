// Reads a trace back (Chrome JSON with simdjson, Perfetto with vztrace's reader) for the
// tests' assertions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vztrace::testing {

using TraceArgs = std::map<std::string, std::string>;  // name -> value, as text

struct TraceEvent {
    std::string name;
    std::int64_t ts_ns = 0;
    std::int64_t dur_ns = 0;
    std::int64_t pid = 0;
    std::int64_t tid = 0;
    bool unfinished = false;
    TraceArgs args;     // the slice's arguments ("unfinished" is the flag above)
    std::string track;  // the name of a track of its own (an asyncio task's); empty: a thread's
    std::int64_t end_ns() const { return ts_ns + dur_ns; }
};

struct TraceInstant {  // "i" events; Perfetto TYPE_INSTANT
    std::string name;
    std::int64_t ts_ns = 0;
    std::int64_t pid = 0;
    std::int64_t tid = 0;
    TraceArgs args;
};

struct TraceCounter {  // "C" events; Perfetto counter tracks
    std::string name;  // the counter track's
    std::int64_t ts_ns = 0;
    std::int64_t pid = 0;
    double value = 0;
};

struct Trace {
    std::vector<TraceEvent> slices;  // "X" events
    std::vector<TraceInstant> instants;
    std::vector<TraceCounter> counters;
    std::map<std::int64_t, std::string> threads;    // tid -> thread_name
    std::map<std::int64_t, std::string> processes;  // pid -> process_name
    std::map<std::string, std::string> metadata;    // vztrace_metadata, values as text

    std::size_t count(const std::string& name) const;
    std::size_t count_prefix(const std::string& prefix) const;
    std::vector<TraceEvent> named(const std::string& prefix) const;
    std::vector<TraceInstant> instants_named(const std::string& name) const;
    std::vector<TraceCounter> counters_named(const std::string& name) const;
    // The names of the slices around `slice` on its thread, the innermost first.
    std::vector<std::string> ancestors(const TraceEvent& slice) const;
    // Deepest nesting of slices whose name starts with `prefix` (1 = no recursion).
    int max_depth(const std::string& prefix) const;
    // Empty when every thread's slices nest properly; otherwise what is wrong.
    std::string nesting_problem() const;
};

// Reads a trace by its extension: .json (simdjson), otherwise Perfetto (vztrace's reader).
// Throws std::runtime_error when the file is not a valid trace.
Trace load_trace(const std::string& path);

// `stem` with the extension of the format the e2e tests run on: Perfetto by default,
// JSON when VZTRACE_TEST_FORMAT=json (ctest runs the trace tests both ways).
std::string trace_name(const std::string& stem);
bool testing_json();

}  // namespace vztrace::testing
