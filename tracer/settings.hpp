// What the user asked of the tracer. Plain data, filled by the launcher.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vztrace::tracer {

// Records in flight (being filled, or waiting for the writer): 32 MiB keeps vztrace's own
// memory well under 64 MiB above the program's, whatever the length of the run.
inline constexpr std::uint64_t kDefaultMaxMemory = std::uint64_t{32} << 20;

// How Python frames are recorded (--hook). kAuto is the frame-evaluation hook (PEP 523)
// wherever it is exact, with sys.monitoring (3.12+) or the profile hook (3.11) for C calls
// and as the fallback; the others force one mechanism.
enum class HookChoice { kAuto, kFrame, kMonitoring, kProfile };

inline constexpr std::string_view kHookChoices = "auto, frame, monitoring, profile";

// The choice named `text`; false if it names none.
inline bool parse_hook_choice(std::string_view text, HookChoice& choice) {
    if (text == "auto") {
        choice = HookChoice::kAuto;
    } else if (text == "frame") {
        choice = HookChoice::kFrame;
    } else if (text == "monitoring") {
        choice = HookChoice::kMonitoring;
    } else if (text == "profile") {
        choice = HookChoice::kProfile;
    } else {
        return false;
    }
    return true;
}

inline std::string_view hook_choice_name(HookChoice choice) {
    switch (choice) {
        case HookChoice::kFrame:
            return "frame";
        case HookChoice::kMonitoring:
            return "monitoring";
        case HookChoice::kProfile:
            return "profile";
        case HookChoice::kAuto:
            break;
    }
    return "auto";
}

struct TraceSettings {
    std::string output = "result.pftrace";  // absolute once the launcher has resolved it
    // -o on this process's own command line: a vztrace that a traced program starts so is a
    // root of its own, writing where it was told, not a child of the tree.
    bool output_on_command_line = false;
    bool quiet = false;
    bool ignore_c_function = false;
    HookChoice hook = HookChoice::kAuto;
    std::uint64_t max_memory = kDefaultMaxMemory;  // bytes of records in flight
    std::uint64_t max_size = 0;                    // bytes of trace file, then stop; 0: none
    bool compress = false;                         // Perfetto compressed_packets
    std::uint64_t ring = 0;  // keep only the newest this many bytes of records; 0: stream all
    // --tracer_entries: the ring keeps at least this many calls (0: as `ring` says), growing
    // past `ring` when arguments and other logged records take room in it.
    std::uint64_t ring_calls = 0;
    bool ignore_multiprocess = false;  // trace the root process only
    bool pid_suffix = false;           // one file per process, named with its pid
    std::string output_dir;            // one file per process, in this directory

    // Filters. A file filter is taken once per code object: a left-out function's frames
    // are never recorded (nor the C calls its own code makes); what it calls is.
    std::vector<std::string> include_files;  // absolute path prefixes or globs; empty: all
    std::vector<std::string> exclude_files;
    bool ignore_frozen = false;         // importlib's "<frozen ...>" frames
    std::uint32_t max_stack_depth = 0;  // calls nested deeper on a thread are left out; 0: all
    std::uint64_t min_duration_ns = 0;  // shorter calls are left out, their children stay
    bool no_startup = false;            // nothing before the program's own code starts

    // What else is recorded.
    bool log_func_args = false;                 // repr of each Python call's arguments
    bool log_func_retval = false;               // repr of each Python call's return value
    bool log_exception = false;                 // type and message of the exception a call ends by
    bool log_gc = false;                        // garbage collections as slices
    bool log_print = false;                     // what print() wrote, as instants
    bool log_audit = false;                     // audit events as instants
    std::vector<std::string> log_audit_events;  // only these (empty: all)
    bool log_async = false;                     // asyncio tasks on tracks of their own
    bool log_sparse = false;                    // only @vztrace.sparse functions

    // Whether a per-thread filter stands between the records and the encoder.
    bool filters_records() const {
        return max_stack_depth > 0 || min_duration_ns > 0 || log_sparse;
    }
};

// Longest repr kept by --log-func-args and --log-func-retval, in bytes (UTF-8); a longer
// one is cut and ends with "...".
inline constexpr std::size_t kMaxReprBytes = 512;

// --tracer_entries N (VizTracer's spelling): the ring that keeps at least the newest N
// calls, a begin and an end of 16 bytes each. The ring holds whole chunks of 4096 records
// and gives up its oldest whole, and the newest is partly filled: two chunks more than the
// calls need.
inline std::uint64_t ring_bytes_for_calls(std::uint64_t calls) {
    constexpr std::uint64_t kChunkRecords = 4096;
    const std::uint64_t chunks = (2 * calls + kChunkRecords - 1) / kChunkRecords + 2;
    return chunks * kChunkRecords * 16;
}

enum class TraceFormat { kPerfetto, kJson, kUnknown };

// The format `-o` asks for, by its extension.
inline TraceFormat format_of(std::string_view path) {
    const auto ends = [&](std::string_view suffix) {
        return path.size() >= suffix.size() && path.substr(path.size() - suffix.size()) == suffix;
    };
    if (ends(".pftrace") || ends(".perfetto-trace")) return TraceFormat::kPerfetto;
    if (ends(".json") || ends(".json.gz")) return TraceFormat::kJson;
    return TraceFormat::kUnknown;
}

inline constexpr std::string_view kFormatList = ".pftrace, .perfetto-trace, .json, .json.gz";

}  // namespace vztrace::tracer
