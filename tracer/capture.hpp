// Capture: everything a writer needs, as plain data. Writers include this, never Python.h,
// so they can be tested, fuzzed and reused without an interpreter.
#pragma once

#include <algorithm>
#include <cstdint>
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

struct CaptureInfo {
    std::string vztrace_version;
    std::string python_version;
    std::string hook;  // "sys.monitoring (tool 5)" or "PyEval_SetProfile"
    ClockSource clock = ClockSource::kMonotonic;
    std::int64_t realtime_offset_ns = 0;
    std::uint64_t max_memory = 0;
    bool memory_cap_reached = false;
};

// One process's recording: its own symbols and its own tick mapping, so captures of a
// whole process tree (each process's part read back from a file) go into one trace.
struct ProcessCapture {
    std::int64_t pid = 0;
    std::string name;
    std::vector<std::string> symbols;  // index = SymbolId
    TickMapping mapping;
    std::uint64_t end_ticks = 0;  // calls still open are closed here (and flagged)
    std::vector<ThreadCapture> threads;
    CaptureInfo info;
    std::vector<std::vector<Record>> storage;  // owns the records of a part read from a file
};

struct Capture {
    std::vector<ProcessCapture> processes;   // the first is the one writing the trace
    std::vector<std::int64_t> missing_pids;  // processes that ended without their part
    // Children killed by a signal before any of the program's code ran (nothing to lose).
    std::vector<std::int64_t> killed_before_start_pids;
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
// matches a deeper enter closes the calls above it at the same time. A template: the
// writers call it once per event.
template <typename Emit>
void for_each_slice(const ThreadCapture& thread, std::uint64_t end_ticks, Emit&& emit) {
    struct Open {
        SymbolId symbol;
        std::uint64_t begin;
    };
    std::vector<Open> stack;
    stack.reserve(256);
    std::uint64_t last_ticks = 0;
    for (const auto& chunk : thread.chunks) {
        for (const Record& record : chunk) {
            last_ticks = record.ticks;
            if (record.kind == EventKind::kEnter) {
                stack.push_back(Open{record.symbol, record.ticks});
                continue;
            }
            if (stack.empty()) continue;
            if (VZ_UNLIKELY(stack.back().symbol != record.symbol)) {
                const auto match = std::find_if(stack.rbegin(), stack.rend(), [&](const Open& o) {
                    return o.symbol == record.symbol;
                });
                if (match == stack.rend()) continue;
                const auto keep = static_cast<std::size_t>(stack.rend() - match);
                while (stack.size() > keep) {
                    emit(Slice{stack.back().symbol, stack.back().begin, record.ticks, true});
                    stack.pop_back();
                }
            }
            emit(Slice{stack.back().symbol, stack.back().begin, record.ticks, false});
            stack.pop_back();
        }
    }
    // After the memory cap, nothing later is known: close at the last record instead.
    const std::uint64_t close_at =
        thread.dropped > 0 ? last_ticks : std::max(end_ticks, last_ticks);
    while (!stack.empty()) {
        emit(Slice{stack.back().symbol, stack.back().begin, close_at, true});
        stack.pop_back();
    }
}

std::uint64_t count_events(const Capture& capture);
std::uint64_t count_dropped(const Capture& capture);

}  // namespace vztrace::tracer
