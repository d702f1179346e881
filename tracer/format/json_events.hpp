// The events of a Chrome JSON trace, as simdjson parses them, behind a C interface: the
// parser lives in a module of its own (vztrace-json-events.so, beside the executable or in
// an install's lib/vztrace/), loaded only when a JSON trace is read. libsimdjson as a
// shared library brings libstdc++ with it, and loading both cost every run of vztrace,
// traced programs included, about 0.5 ms of start-up before a single trace was read.
//
// Nothing of C++ crosses this interface: the executable and the module may each carry
// their own C++ runtime. No Python.h, no simdjson.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" {

// One event of "traceEvents" (or of a bare event array). Strings point into the parser's
// buffer and live until the callback returns; absent fields have size 0 / has_* false.
struct VztraceJsonEvent {
    const char* phase;  // "ph"
    std::size_t phase_size;
    const char* name;  // "name"
    std::size_t name_size;
    const char* label;  // "args"."name" (metadata events name processes and threads so)
    std::size_t label_size;
    std::int64_t pid;  // 0 when absent or not a number
    std::int64_t tid;
    double ts;  // microseconds
    double dur;
    bool has_ts;      // a finite number
    bool has_dur;     // a number (negative or not finite counts as absent)
    bool has_args;    // "args" is an object with something in it (a call's arguments, result)
                      // besides the flag below
    bool unfinished;  // "args"."unfinished" is true: vztrace's mark of a call cut short
    // A member of the trace's top-level "vztrace_metadata" or "viztracer_metadata" object,
    // not an event: `phase` is that object's name, `name` the member's key and `label` its
    // value (a string's text; a number, a boolean or an array as JSON).
    bool is_metadata;
};

// Called for each event object that has a string "ph", in file order, then for each member
// of the metadata objects.
using VztraceJsonEventCallback = void (*)(void* context, const VztraceJsonEvent* event);

enum VztraceJsonStatus : int {
    kVztraceJsonTrace = 0,        // every event was handed over
    kVztraceJsonDamaged = 1,      // not JSON, or damaged (`why` says how)
    kVztraceJsonNoEvents = 2,     // JSON with no traceEvents: not a trace
    kVztraceJsonOutOfMemory = 3,  // the system refused the parser memory
};

// Parses `text` (`size` bytes; the buffer holds at least `size + 64` bytes, as simdjson
// needs) and hands each event to `callback`. When damaged, `*why` is a message that lives
// as long as the module.
VztraceJsonStatus vztrace_json_events(const char* text, std::size_t size,
                                      VztraceJsonEventCallback callback, void* context,
                                      const char** why);

}  // extern "C"

namespace vztrace::format {

// simdjson's padding: what `vztrace_json_events` may read past the text.
inline constexpr std::size_t kJsonPadding = 64;

// The module's parser; null, with `error` set to one line, if it cannot be found or
// loaded. A program that links json_events.cpp itself (the unit tests) gets that copy.
decltype(&vztrace_json_events) json_events_parser(std::string& error);

}  // namespace vztrace::format
