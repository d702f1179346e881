// What the user asked of the tracer. Plain data, filled by the launcher.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

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
    bool quiet = false;
    bool ignore_c_function = false;
    HookChoice hook = HookChoice::kAuto;
    std::uint64_t max_memory = kDefaultMaxMemory;  // bytes of records in flight
    std::uint64_t max_size = 0;                    // bytes of trace file, then stop; 0: none
    bool compress = false;                         // Perfetto compressed_packets
    std::uint64_t ring = 0;  // keep only the newest this many bytes of records; 0: stream all
    bool ignore_multiprocess = false;  // trace the root process only
    bool pid_suffix = false;           // one file per process, named with its pid
    std::string output_dir;            // one file per process, in this directory
};

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
