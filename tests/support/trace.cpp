#include "support/trace.hpp"

#include <simdjson.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <tuple>

#include "support/process.hpp"
#include "tracer/format/perfetto_reader.hpp"

namespace vztrace::testing {
namespace {

std::int64_t micros_to_ns(double micros) { return std::llround(micros * 1000.0); }

std::string as_text(simdjson::dom::element value) {
    switch (value.type()) {
        case simdjson::dom::element_type::STRING:
            return std::string(std::string_view(value));
        case simdjson::dom::element_type::INT64:
            return std::to_string(std::int64_t(value));
        case simdjson::dom::element_type::UINT64:
            return std::to_string(std::uint64_t(value));
        case simdjson::dom::element_type::DOUBLE:
            return std::to_string(double(value));
        case simdjson::dom::element_type::BOOL:
            return bool(value) ? "true" : "false";
        default:
            return simdjson::to_string(value);
    }
}

// Slices of one thread ordered for a stack walk: by start, the longer (outer) first.
std::map<std::int64_t, std::vector<TraceEvent>> by_thread(const std::vector<TraceEvent>& all,
                                                          const std::string& prefix) {
    std::map<std::int64_t, std::vector<TraceEvent>> threads;
    for (const auto& e : all) {
        if (e.name.rfind(prefix, 0) == 0) threads[e.tid].push_back(e);
    }
    for (auto& [tid, events] : threads) {
        std::stable_sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
            return a.ts_ns != b.ts_ns ? a.ts_ns < b.ts_ns : a.dur_ns > b.dur_ns;
        });
    }
    return threads;
}

}  // namespace

std::size_t Trace::count(const std::string& name) const {
    return static_cast<std::size_t>(
        std::count_if(slices.begin(), slices.end(), [&](const auto& e) { return e.name == name; }));
}

std::size_t Trace::count_prefix(const std::string& prefix) const { return named(prefix).size(); }

std::vector<TraceEvent> Trace::named(const std::string& prefix) const {
    std::vector<TraceEvent> result;
    for (const auto& e : slices) {
        if (e.name.rfind(prefix, 0) == 0) result.push_back(e);
    }
    return result;
}

std::vector<TraceInstant> Trace::instants_named(const std::string& name) const {
    std::vector<TraceInstant> result;
    for (const auto& e : instants) {
        if (e.name == name) result.push_back(e);
    }
    return result;
}

std::vector<TraceCounter> Trace::counters_named(const std::string& name) const {
    std::vector<TraceCounter> result;
    for (const auto& e : counters) {
        if (e.name == name) result.push_back(e);
    }
    return result;
}

std::vector<std::string> Trace::ancestors(const TraceEvent& slice) const {
    std::vector<TraceEvent> thread;
    for (const auto& e : slices) {
        if (e.pid == slice.pid && e.tid == slice.tid) thread.push_back(e);
    }
    std::stable_sort(thread.begin(), thread.end(), [](const auto& a, const auto& b) {
        return a.ts_ns != b.ts_ns ? a.ts_ns < b.ts_ns : a.dur_ns > b.dur_ns;
    });
    std::vector<const TraceEvent*> open;
    for (const auto& e : thread) {
        while (!open.empty() && open.back()->end_ns() <= e.ts_ns) open.pop_back();
        if (e.ts_ns == slice.ts_ns && e.dur_ns == slice.dur_ns && e.name == slice.name) {
            std::vector<std::string> names;
            for (auto it = open.rbegin(); it != open.rend(); ++it) names.push_back((*it)->name);
            return names;
        }
        open.push_back(&e);
    }
    return {};
}

int Trace::max_depth(const std::string& prefix) const {
    int best = 0;
    for (const auto& [tid, events] : by_thread(slices, prefix)) {
        std::vector<std::int64_t> ends;
        for (const auto& e : events) {
            while (!ends.empty() && ends.back() <= e.ts_ns) ends.pop_back();
            ends.push_back(e.end_ns());
            best = std::max(best, static_cast<int>(ends.size()));
        }
    }
    return best;
}

std::string Trace::nesting_problem() const {
    for (const auto& [tid, events] : by_thread(slices, "")) {
        std::vector<const TraceEvent*> open;
        for (const auto& e : events) {
            if (e.dur_ns < 0) return "negative duration: " + e.name;
            while (!open.empty() && open.back()->end_ns() <= e.ts_ns) open.pop_back();
            if (!open.empty() && e.end_ns() > open.back()->end_ns()) {
                return "'" + e.name + "' overlaps the end of '" + open.back()->name + "' on tid " +
                       std::to_string(tid);
            }
            open.push_back(&e);
        }
    }
    return {};
}

namespace {

// vztrace's own Perfetto reader (tracer/format): the one report and diff use. The
// tests that decode with protoc check the same files independently.
Trace load_perfetto(const std::string& path) {
    format::PerfettoReader reader;
    std::vector<format::DecodedSlice> slices;
    std::vector<std::string> names;
    Trace trace;
    reader.on_slice = [&](const format::DecodedSlice& slice) {
        TraceEvent e;
        e.name = std::string(slice.name);
        e.ts_ns = slice.begin_ns;
        e.dur_ns = slice.end_ns - slice.begin_ns;
        const auto track = reader.tracks().find(slice.track_uuid);
        if (track != reader.tracks().end()) {
            e.pid = track->second.pid;
            e.tid = track->second.tid;
            if (!track->second.is_thread && !track->second.is_process) {
                e.track = track->second.name;
            }
        }
        e.unfinished = slice.unfinished;
        if (slice.args != nullptr) e.args.insert(slice.args->begin(), slice.args->end());
        trace.slices.push_back(std::move(e));
    };
    const auto ids_of = [&reader](std::uint64_t uuid) -> std::pair<std::int64_t, std::int64_t> {
        const auto track = reader.tracks().find(uuid);
        if (track == reader.tracks().end()) return {0, 0};
        return {track->second.pid, track->second.tid};
    };
    reader.on_instant = [&](const format::DecodedInstant& instant) {
        TraceInstant e{std::string(instant.name), instant.at_ns, 0, 0, {}};
        std::tie(e.pid, e.tid) = ids_of(instant.track_uuid);
        e.args.insert(instant.args.begin(), instant.args.end());
        trace.instants.push_back(std::move(e));
    };
    reader.on_counter = [&](const format::DecodedCounter& counter) {
        TraceCounter e{{}, counter.at_ns, 0, counter.value};
        const auto track = reader.tracks().find(counter.track_uuid);
        if (track != reader.tracks().end()) {
            e.name = track->second.name;
            e.pid = track->second.pid;
        }
        trace.counters.push_back(std::move(e));
    };
    if (!reader.read_file(path)) throw std::runtime_error(reader.error());
    reader.close_open_calls();
    for (const auto& [uuid, track] : reader.tracks()) {
        if (track.is_thread) trace.threads[track.tid] = track.name;
        if (track.is_process) trace.processes[track.pid] = track.name;
    }
    for (const auto& [key, value] : reader.metadata()) {
        const std::string_view prefix = "vztrace.";
        trace.metadata[key.rfind(prefix, 0) == 0 ? key.substr(prefix.size()) : key] = value;
    }
    return trace;
}

}  // namespace

std::string trace_name(const std::string& stem) {
    const char* format = std::getenv("VZTRACE_TEST_FORMAT");
    const bool json = format != nullptr && std::string_view(format) == "json";
    return stem + (json ? ".json" : ".pftrace");
}

bool testing_json() { return trace_name("").size() == 5; }

Trace load_trace(const std::string& path) {
    const bool gzipped = path.ends_with(".json.gz");
    if (!path.ends_with(".json") && !gzipped) return load_perfetto(path);
    std::string text;
    if (gzipped) {
        gzFile file = gzopen(path.c_str(), "rb");
        if (file == nullptr) throw std::runtime_error("cannot open " + path);
        char buffer[1 << 16];
        int n = 0;
        while ((n = gzread(file, buffer, sizeof buffer)) > 0) text.append(buffer, n);
        gzclose(file);
        if (n < 0) throw std::runtime_error("cannot gunzip " + path);
    } else {
        text = read_file(path);
    }
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (auto error = parser.parse(text).get(root)) {
        throw std::runtime_error("cannot parse " + path + ": " + simdjson::error_message(error));
    }
    Trace trace;
    std::set<std::int64_t> own_tracks;
    for (simdjson::dom::element event : root["traceEvents"].get_array()) {
        const std::string_view ph = event["ph"].get_string();
        if (ph == "X") {
            TraceEvent e;
            e.name = std::string(event["name"].get_string().value());
            e.ts_ns = micros_to_ns(event["ts"].get_double());
            e.dur_ns = micros_to_ns(event["dur"].get_double());
            e.pid = event["pid"].get_int64();
            e.tid = event["tid"].get_int64();
            simdjson::dom::object args;
            if (event["args"].get(args) == simdjson::SUCCESS) {
                for (auto [key, value] : args) {
                    if (key == "unfinished" && value.is_bool()) {
                        e.unfinished = bool(value);
                    } else {
                        e.args[std::string(key)] = as_text(value);
                    }
                }
            }
            trace.slices.push_back(std::move(e));
        } else if (ph == "i" || ph == "I") {
            TraceInstant e;
            e.name = std::string(event["name"].get_string().value());
            e.ts_ns = micros_to_ns(event["ts"].get_double());
            e.pid = event["pid"].get_int64();
            e.tid = event["tid"].get_int64();
            simdjson::dom::object args;
            if (event["args"].get(args) == simdjson::SUCCESS) {
                for (auto [key, value] : args) e.args[std::string(key)] = as_text(value);
            }
            trace.instants.push_back(std::move(e));
        } else if (ph == "C") {
            // One counter track per name and argument, as Perfetto's JSON importer makes
            // them; vztrace writes one argument, "value", named by its track.
            const std::string name(event["name"].get_string().value());
            simdjson::dom::object args;
            if (event["args"].get(args) != simdjson::SUCCESS) continue;
            for (auto [key, value] : args) {
                TraceCounter e;
                e.name = key == "value" ? name : name + " " + std::string(key);
                e.ts_ns = micros_to_ns(event["ts"].get_double());
                e.pid = event["pid"].get_int64();
                if (value.get_double().get(e.value) != simdjson::SUCCESS) continue;  // null
                trace.counters.push_back(std::move(e));
            }
        } else if (ph == "M") {
            const std::string_view kind = event["name"].get_string();
            const std::string name(event["args"]["name"].get_string().value());
            if (kind == "thread_name") trace.threads[event["tid"].get_int64()] = name;
            if (kind == "process_name") trace.processes[event["pid"].get_int64()] = name;
            if (kind == "vztrace_track") own_tracks.insert(event["tid"].get_int64());
        }
    }
    // A track of its own (an asyncio task's) is a thread of JSON's that vztrace marks as
    // such (format/chrome_json.cpp); the Perfetto reader keeps it apart.
    for (auto& e : trace.slices) {
        const auto named = trace.threads.find(e.tid);
        if (own_tracks.contains(e.tid) && named != trace.threads.end()) e.track = named->second;
    }
    std::erase_if(trace.threads,
                  [&](const auto& entry) { return own_tracks.contains(entry.first); });
    simdjson::dom::object metadata;
    if (root["vztrace_metadata"].get(metadata) == simdjson::SUCCESS) {
        for (auto [key, value] : metadata) trace.metadata[std::string(key)] = as_text(value);
    }
    return trace;
}

}  // namespace vztrace::testing
