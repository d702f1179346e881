// The module vztrace-json-events.so: simdjson's DOM parser behind json_events.hpp's C
// interface. Linked into the unit tests too.
#include "tracer/format/json_events.hpp"

#include <simdjson.h>

#include <cmath>
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
    out = static_cast<std::int64_t>(number);
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

VztraceJsonStatus parse(const char* text, std::size_t size, VztraceJsonEventCallback callback,
                        void* context, const char** why) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (const auto error = parser.parse(text, size, false).get(root)) {
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
    for (simdjson::dom::element element : events) {
        std::string_view phase, name, label;
        if (!element.is_object() || element["ph"].get(phase) != simdjson::SUCCESS) continue;
        VztraceJsonEvent event{};
        simdjson::dom::element value;
        if (element["pid"].get(value) == simdjson::SUCCESS) integer_of(value, event.pid);
        if (element["tid"].get(value) == simdjson::SUCCESS) integer_of(value, event.tid);
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
        *why = "out of memory";
    } catch (...) {
        *why = "the JSON parser failed";
    }
    return kVztraceJsonDamaged;
}
