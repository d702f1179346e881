// Reads any trace vztrace knows as the calls of each thread, in order: vztrace's Perfetto
// (.pftrace) and Chrome JSON (.json, .json.gz) traces, and VizTracer's JSON. The format is
// told by the content, not the name. A begin and an end per call, properly nested on each
// thread. No Python.h; Perfetto is streamed, JSON is parsed whole (simdjson, in a module:
// json_events.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vztrace::format {

class CallVisitor {
 public:
    // A thread's identity; called for every thread before or after its calls, and again
    // when a later descriptor renames it. `thread` keys the begin and end calls.
    virtual void thread(std::uint64_t thread, std::int64_t pid, std::int64_t tid,
                        std::string_view process_name, std::string_view thread_name) = 0;
    // A track of its own in a process, not a thread's: vztrace's are asyncio tasks'
    // (--log-async), whose slices are the task's steps ("running"), not calls. Read as a
    // thread of its process by default (`tid`: named_track_tid), as JSON writes it.
    virtual void named_track(std::uint64_t track, std::int64_t pid, std::int64_t tid,
                             std::string_view process_name, std::string_view track_name) {
        thread(track, pid, tid, process_name, track_name);
    }
    virtual void begin(std::uint64_t thread, std::string_view name, std::int64_t ns) = 0;
    virtual void end(std::uint64_t thread, std::int64_t ns) = 0;
    // The end of a call the trace flags unfinished (it was still running when its process
    // or the recording ended, and ends at the last moment known).
    virtual void end_unfinished(std::uint64_t thread, std::int64_t ns) { end(thread, ns); }

 protected:
    ~CallVisitor() = default;
};

struct CallReadResult {
    enum class Status {
        kOk,
        kUnreadable,  // missing, a directory, no permission
        kDamaged,     // not a trace in a known format, or damaged inside
        kNoReader,    // a JSON trace, but vztrace's JSON module is missing (json_events.hpp)
    };
    Status status = Status::kOk;
    std::string error;       // why, when not kOk
    bool truncated = false;  // kOk, but the trace stops inside a packet (a killed writer)
    // kOk, but a recording's trace stops between two packets, before its closing metadata
    // (a copy cut short, a killed writer).
    bool ends_early = false;
    // Perfetto: calls begun and never ended in the trace, read as ending at their thread's
    // last event. vztrace ends every call it writes (those open at the end are flagged), so
    // in its traces these are the mark of a writer killed between two packets.
    std::uint64_t calls_left_open = 0;
    std::string format;  // "perfetto", "json", "json.gz"
    // CLOCK_REALTIME minus the trace's time axis, when the trace records it (vztrace's
    // Perfetto traces do): what lines up traces of different machines.
    std::optional<std::int64_t> realtime_offset_ns;
    // What the trace holds besides calls, which the visitor is not given (export and combine
    // say what they leave out): instants, counter values, calls with arguments or results,
    // and a JSON trace's events of other kinds (VizTracer's objects, async slices, flows).
    std::uint64_t instants = 0;
    std::uint64_t counter_values = 0;
    std::uint64_t other_events = 0;
    std::uint64_t calls_with_args = 0;
    // What the recorder wrote about the recording: "vztrace" (its Perfetto metadata, or
    // vztrace_metadata in JSON) or "viztracer" (viztracer_metadata), and its keys and
    // values, in the order read, keys without a prefix; empty when the trace has none.
    std::string recorder;
    std::vector<std::pair<std::string, std::string>> recording;
};

CallReadResult read_calls(const std::string& path, CallVisitor& visitor);

// What the recorder says the trace lacks, one sentence each (no path, no full stop):
// events not recorded past --max-size, processes killed before their part was complete or
// that left none, and VizTracer's full buffer. `warning` is false for what was asked for:
// the older events a --ring overwrote.
struct RecordingGap {
    bool warning = true;
    std::string text;
};
std::vector<RecordingGap> recording_gaps(const CallReadResult& read);

}  // namespace vztrace::format
