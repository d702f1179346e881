// Capture: everything a writer needs, as plain data. Writers include this, never Python.h,
// so they can be tested, fuzzed and reused without an interpreter.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "tracer/clock.hpp"
#include "tracer/thread_buffer.hpp"

namespace vztrace::tracer {

struct ThreadCapture {
    std::uint64_t tid = 0;
    std::string name;
    std::vector<std::span<const Record>> chunks;
    std::uint64_t dropped = 0;  // events not recorded after the memory cap
};

struct ProcessCapture {
    std::int64_t pid = 0;
    std::string name;
    std::vector<ThreadCapture> threads;
};

struct CaptureInfo {
    std::string vztrace_version;
    std::string python_version;
    std::string hook;  // "sys.monitoring (tool 5)" or "PyEval_SetProfile"
    ClockSource clock = ClockSource::kMonotonic;
    std::int64_t realtime_offset_ns = 0;
    std::uint64_t max_memory = 0;
    bool memory_cap_reached = false;
};

struct Capture {
    std::vector<std::string> symbols;  // index = SymbolId
    std::vector<ProcessCapture> processes;
    TickMapping mapping;
    std::uint64_t end_ticks = 0;  // calls still open are closed here (and flagged)
    CaptureInfo info;
};

// A call with both ends known, as the writers see it.
struct Slice {
    SymbolId symbol;
    std::uint64_t begin_ticks;
    std::uint64_t end_ticks;
    bool unfinished;  // still open when recording ended; closed at the end time
};

// Pairs one thread's enter and exit records into slices, innermost first. An exit with
// no matching enter (a frame that began before the hooks) is skipped; an exit that
// matches a deeper enter closes the calls above it at the same time.
void for_each_slice(const ThreadCapture& thread, std::uint64_t end_ticks,
                    const std::function<void(const Slice&)>& emit);

std::uint64_t count_events(const Capture& capture);
std::uint64_t count_dropped(const Capture& capture);

}  // namespace vztrace::tracer
