// The module vztrace-json-events.so: simdjson's DOM parser behind json_events.hpp's C
// interface. Linked into the unit tests too.
#include "tracer/format/json_events.hpp"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <exception>
#include <new>
#include <string>

static_assert(vztrace::format::kJsonPadding == simdjson::SIMDJSON_PADDING);

namespace {

bool number_of(simdjson::dom::element value, double& out) {
    if (value.is_double()) return value.get_double().get(out) == simdjson::SUCCESS;
    if (value.is_int64()) {
        out = static_cast<double>(std::int64_t(value));
        return true;
    }
    if (value.is_uint64()) {
        out = static_cast<double>(std::uint64_t(value));
        return true;
    }
    return false;
}

bool integer_of(simdjson::dom::element value, std::int64_t& out) {
    double number = 0;
    if (value.is_int64()) return value.get_int64().get(out) == simdjson::SUCCESS;
    if (!number_of(value, number) || !std::isfinite(number)) return false;
    // Past 64 bits (1e30, 2^64 - 1): cut to the range, not converted undefined.
    constexpr double kLimit = 9.2e18;
    out = static_cast<std::int64_t>(std::clamp(number, -kLimit, kLimit));
    return true;
}

// A pid or tid, as a number or (some tools write them so) a string: "123" is 123, any
// other text an id of its own, the same for the same text (they all read as 0, and two
// threads named so became one).
bool id_of(simdjson::dom::element value, std::int64_t& out) {
    std::string_view text;
    if (value.get(text) != simdjson::SUCCESS) return integer_of(value, out);
    std::int64_t number = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (error == std::errc() && end == text.data() + text.size() && !text.empty()) {
        out = number;
        return true;
    }
    std::uint64_t hash = 1469598103934665603ULL;  // FNV-1a, 64 bits
    for (const char c : text) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 1099511628211ULL;
    }
    out = static_cast<std::int64_t>((hash >> 1) | (std::uint64_t{1} << 61));  // > any real id
    return true;
}

void set_strings(VztraceJsonEvent& event, std::string_view phase, std::string_view name,
                 std::string_view label) {
    event.phase = phase.data();
    event.phase_size = phase.size();
    event.name = name.data();
    event.name_size = name.size();
    event.label = label.data();
    event.label_size = label.size();
}

// The value of the 4 hex digits at `text`, or -1.
long hex4(const char* text) {
    long value = 0;
    for (int k = 0; k < 4; ++k) {
        const char c = text[k];
        const int digit = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
        if (digit < 0) return -1;
        value = value * 16 + digit;
    }
    return value;
}

// Escapes of a lone UTF-16 surrogate (\udce9: what Python's json writes for a file name
// that is not UTF-8, surrogateescape'd) are valid JSON that simdjson refuses: each is made
// \ufffd, as vztrace writes such text. Every backslash of valid JSON starts an escape
// inside a string, so the escapes are found by walking them. Returns whether any changed.
bool replace_lone_surrogates(char* text, std::size_t size) {
    bool changed = false;
    for (std::size_t i = 0; i + 1 < size; ++i) {
        if (text[i] != '\\') continue;
        if (text[i + 1] != 'u' || i + 6 > size) {  // \n, \", \\ ...
            ++i;
            continue;
        }
        const long unit = hex4(text + i + 2);
        const bool high = unit >= 0xD800 && unit <= 0xDBFF;
        const bool low = unit >= 0xDC00 && unit <= 0xDFFF;
        if (high && i + 12 <= size && text[i + 6] == '\\' && text[i + 7] == 'u') {
            const long next = hex4(text + i + 8);
            if (next >= 0xDC00 && next <= 0xDFFF) {  // a pair: one character
                i += 11;
                continue;
            }
        }
        if (high || low) {
            std::memcpy(text + i + 2, "fffd", 4);
            changed = true;
        }
        i += 5;
    }
    return changed;
}

VztraceJsonStatus parse(const char* text, std::size_t size, VztraceJsonEventCallback callback,
                        void* context, const char** why) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    auto error = parser.parse(text, size, false).get(root);
    if (error == simdjson::STRING_ERROR) {
        simdjson::padded_string repaired(text, size);
        if (replace_lone_surrogates(repaired.data(), size))
            error = parser.parse(repaired).get(root);
    }
    if (error == simdjson::MEMALLOC) return kVztraceJsonOutOfMemory;  // not the file's fault
    if (error == simdjson::DEPTH_ERROR) {
        // JSON as such, but deeper than the parser goes (another tool's arguments).
        *why = "its values nest deeper than the 1024 levels vztrace reads";
        return kVztraceJsonDamaged;
    }
    if (error) {
        *why = simdjson::error_message(error);
        return kVztraceJsonDamaged;
    }
    // {"traceEvents": [...]} or, in Chrome's array form, the events alone.
    simdjson::dom::array events;
    if (root.is_array()) {
        events = root.get_array();
    } else if (root["traceEvents"].get(events) != simdjson::SUCCESS) {
        return kVztraceJsonNoEvents;
    }
    // Entries that are no events (no "ph") are skipped; a list of nothing else is no trace
    // (["a", "b"], {"traceEvents": [1, 2]}). An empty list is an empty trace.
    std::size_t seen = 0;
    for (simdjson::dom::element element : events) {
        std::string_view phase, name, label;
        if (!element.is_object() || element["ph"].get(phase) != simdjson::SUCCESS) continue;
        ++seen;
        VztraceJsonEvent event{};
        simdjson::dom::element value;
        if (element["pid"].get(value) == simdjson::SUCCESS) id_of(value, event.pid);
        if (element["tid"].get(value) == simdjson::SUCCESS) id_of(value, event.tid);
        if (element["name"].get(name) != simdjson::SUCCESS) name = {};
        if (element["args"]["name"].get(label) != simdjson::SUCCESS) label = {};
        event.has_ts = element["ts"].get(value) == simdjson::SUCCESS &&
                       number_of(value, event.ts) && std::isfinite(event.ts);
        event.has_dur = element["dur"].get(value) == simdjson::SUCCESS &&
                        number_of(value, event.dur) && std::isfinite(event.dur) && event.dur >= 0;
        simdjson::dom::object args;
        if (element["args"].get(args) == simdjson::SUCCESS) {
            bool flag = false;
            event.unfinished = args["unfinished"].get(flag) == simdjson::SUCCESS && flag;
            event.has_args = args.size() > (event.unfinished ? 1U : 0U);
        }
        set_strings(event, phase, name, label);
        callback(context, &event);
    }
    if (seen == 0 && events.size() > 0) return kVztraceJsonNoEvents;
    if (!root.is_object()) return kVztraceJsonTrace;
    for (const std::string_view object : {"vztrace_metadata", "viztracer_metadata"}) {
        simdjson::dom::object members;
        if (root[object].get(members) != simdjson::SUCCESS) continue;
        for (const auto [key, value] : members) {
            std::string shown;
            std::string_view string;
            if (value.get(string) == simdjson::SUCCESS) {
                shown = string;
            } else {
                shown = simdjson::minify(value);
            }
            VztraceJsonEvent entry{};
            entry.is_metadata = true;
            set_strings(entry, object, key, shown);
            callback(context, &entry);
        }
    }
    return kVztraceJsonTrace;
}

}  // namespace

extern "C" [[gnu::visibility("default")]] VztraceJsonStatus vztrace_json_events(
    const char* text, std::size_t size, VztraceJsonEventCallback callback, void* context,
    const char** why) {
    try {  // nothing may unwind out of the module: the caller's C++ runtime is another one
        return parse(text, size, callback, context, why);
    } catch (const std::bad_alloc&) {
        return kVztraceJsonOutOfMemory;
    } catch (...) {
        *why = "the JSON parser failed";
    }
    return kVztraceJsonDamaged;
}
