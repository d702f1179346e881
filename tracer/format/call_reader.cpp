#include "tracer/format/call_reader.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tracer/format/json_events.hpp"
#include "tracer/format/module_loader.hpp"
#include "tracer/format/perfetto_reader.hpp"

namespace vztrace::format {
namespace {

using Status = CallReadResult::Status;

CallReadResult failed(Status status, std::string error) {
    CallReadResult result;
    result.status = status;
    result.error = std::move(error);
    return result;
}

// The first bytes of the file, to tell its format.
bool read_head(const std::string& path, std::string& head, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
        return false;
    }
    head.resize(64);
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<std::size_t>(in.gcount()));
    return true;
}

bool read_whole(const std::string& path, std::string& out, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
        return false;
    }
    out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return true;
}

bool gunzip(const std::string& path, std::string& out, std::string& error) {
    gzFile file = gzopen(path.c_str(), "rb");
    if (file == nullptr) {
        error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
        return false;
    }
    char buffer[1 << 16];
    int n = 0;
    while ((n = gzread(file, buffer, sizeof buffer)) > 0)
        out.append(buffer, static_cast<std::size_t>(n));
    int code = Z_OK;
    const char* message = gzerror(file, &code);
    const bool ok = n == 0 && (code == Z_OK || code == Z_STREAM_END);
    if (!ok) error = fmt::format("{} is damaged: gzip: {}", path, message);
    gzclose(file);
    return ok;
}

// ---- Perfetto ---------------------------------------------------------------------------

CallReadResult read_perfetto(const std::string& path, CallVisitor& visitor) {
    PerfettoReader reader;
    std::unordered_set<std::uint64_t> with_slices;  // tracks (looked up once per change)
    std::uint64_t last_track = 0;
    reader.on_begin = [&](std::uint64_t track, std::string_view name, std::int64_t ns) {
        if (track != last_track) {
            with_slices.insert(track);
            last_track = track;
        }
        visitor.begin(track, name, ns);
    };
    CallReadResult result;
    reader.on_slice = [&](const DecodedSlice& slice) {
        if (slice.args != nullptr && !slice.args->empty()) ++result.calls_with_args;
        visitor.end(slice.track_uuid, slice.end_ns);
    };
    reader.on_instant = [&](const DecodedInstant&) { ++result.instants; };
    reader.on_counter = [&](const DecodedCounter&) { ++result.counter_values; };
    const bool ok = reader.read_file(path);
    if (!ok && !reader.truncated()) {
        return failed(Status::kDamaged, fmt::format("{} is damaged: {}", path, reader.error()));
    }
    reader.close_open_calls();  // a killed writer's calls end at their thread's last event
    result.format = "perfetto";
    result.truncated = reader.truncated();
    result.realtime_offset_ns = reader.realtime_offset_ns();
    const auto& tracks = reader.tracks();
    for (const auto& [uuid, track] : tracks) {
        if (!track.is_thread && !with_slices.contains(uuid)) continue;
        const auto process = tracks.find(track.parent_uuid);
        const std::string_view process_name =
            process != tracks.end() ? std::string_view(process->second.name) : std::string_view();
        // A named track (an asyncio task's) is a thread of its process, as in JSON.
        visitor.thread(uuid, track.pid, track.is_thread ? track.tid : named_track_tid(uuid),
                       process_name, track.name);
    }
    return result;
}

// ---- Chrome JSON (vztrace's, VizTracer's) -----------------------------------------------

struct JsonCall {
    std::int64_t begin_ns;
    std::int64_t end_ns;
    std::uint32_t name;
    std::uint32_t written = 0;  // its place in the file, among its thread's calls
};

struct JsonThread {
    std::int64_t pid = 0;
    std::int64_t tid = 0;
    std::vector<JsonCall> calls;
    std::vector<std::pair<std::int64_t, std::uint32_t>> open;  // B events not yet ended
    std::int64_t last_ns = INT64_MIN;                          // its latest time seen
};

std::int64_t micros_to_ns(double micros) { return std::llround(micros * 1000.0); }

// What read_json gathers from the module's events (the callback may not throw: the
// module's frames are between it and any handler).
struct JsonEvents {
    std::map<std::pair<std::int64_t, std::int64_t>, JsonThread> threads;
    std::map<std::int64_t, std::string> process_names;
    std::map<std::pair<std::int64_t, std::int64_t>, std::string> thread_names;
    std::unordered_map<std::string, std::uint32_t> name_ids;
    std::vector<std::string> names;
    std::string error;  // the first event that makes the trace damaged
    bool out_of_memory = false;
    std::uint64_t instants = 0;
    std::uint64_t counter_values = 0;

    std::uint32_t name_id(std::string_view name) {
        const auto [it, added] =
            name_ids.emplace(std::string(name), static_cast<std::uint32_t>(names.size()));
        if (added) names.emplace_back(name);
        return it->second;
    }

    void add(const VztraceJsonEvent& event) {
        const std::string_view phase(event.phase, event.phase_size);
        const std::string_view name(event.name, event.name_size);
        if (phase == "M") {
            if (event.label == nullptr) return;
            const std::string_view label(event.label, event.label_size);
            if (name == "process_name") process_names[event.pid] = std::string(label);
            if (name == "thread_name") thread_names[{event.pid, event.tid}] = std::string(label);
            return;
        }
        if (phase == "i" || phase == "I") ++instants;
        if (phase == "C") ++counter_values;
        if (phase != "X" && phase != "B" && phase != "E") return;
        if (!event.has_ts) {
            error = fmt::format("an event \"{}\" has no time", name);
            return;
        }
        JsonThread& thread = threads[{event.pid, event.tid}];
        thread.pid = event.pid;
        thread.tid = event.tid;
        thread.last_ns = std::max(thread.last_ns, micros_to_ns(event.ts));
        if (phase == "X") {
            const std::int64_t begin = micros_to_ns(event.ts);
            const double dur = event.has_dur ? event.dur : 0;
            thread.calls.push_back(JsonCall{begin, begin + micros_to_ns(dur), name_id(name)});
            thread.last_ns = std::max(thread.last_ns, thread.calls.back().end_ns);
        } else if (phase == "B") {
            thread.open.emplace_back(micros_to_ns(event.ts), name_id(name));
        } else if (!thread.open.empty()) {  // E ends the innermost B
            const auto [begin, id] = thread.open.back();
            thread.open.pop_back();
            thread.calls.push_back(JsonCall{begin, std::max(begin, micros_to_ns(event.ts)), id});
        }
    }

    static void on_event(void* context, const VztraceJsonEvent* event) noexcept {
        auto& events = *static_cast<JsonEvents*>(context);
        if (!events.error.empty() || events.out_of_memory) return;
        try {
            events.add(*event);
        } catch (const std::bad_alloc&) {
            events.out_of_memory = true;
        }
    }
};

CallReadResult read_json(const std::string& path, std::string text, const char* format,
                         CallVisitor& visitor) {
    std::string error;
    const auto parse = json_events_parser(error);
    if (parse == nullptr) return failed(Status::kNoReader, "cannot read JSON traces: " + error);
    const std::size_t size = text.size();
    text.resize(size + kJsonPadding);
    JsonEvents events;
    const char* why = "";
    switch (parse(text.data(), size, &JsonEvents::on_event, &events, &why)) {
        case kVztraceJsonTrace:
            break;
        case kVztraceJsonNoEvents:
            return failed(Status::kDamaged,
                          fmt::format("{} is not a trace: a JSON file with no traceEvents", path));
        case kVztraceJsonDamaged:
            return failed(Status::kDamaged, fmt::format("{} is damaged: JSON: {}", path, why));
    }
    if (events.out_of_memory) throw std::bad_alloc();
    if (!events.error.empty()) {
        return failed(Status::kDamaged, fmt::format("{} is damaged: {}", path, events.error));
    }
    auto& threads = events.threads;
    auto& process_names = events.process_names;
    auto& thread_names = events.thread_names;
    auto& names = events.names;
    std::uint64_t key = 0;
    for (auto& [ids, thread] : threads) {
        ++key;
        const auto process = process_names.find(ids.first);
        const auto named = thread_names.find(ids);
        visitor.thread(key, thread.pid, thread.tid,
                       process != process_names.end() ? process->second : std::string(),
                       named != thread_names.end() ? named->second : std::string());
        // A B with no E (a call the trace ended in) ends at the thread's last time, as
        // Perfetto shows it: innermost first, so the order of writing holds.
        while (!thread.open.empty()) {
            const auto [begin, id] = thread.open.back();
            thread.open.pop_back();
            thread.calls.push_back(JsonCall{begin, std::max(begin, thread.last_ns), id});
        }
        // Parents before children: by begin, the longer first, and of calls with the same
        // begin and end, the one written later (a complete event is written as its call
        // ends, so a parent comes after its children: calls a ring cut, all begun at the
        // cut and still open at the end, are such).
        for (std::size_t i = 0; i < thread.calls.size(); ++i) {
            thread.calls[i].written = static_cast<std::uint32_t>(i);
        }
        std::sort(thread.calls.begin(), thread.calls.end(),
                  [](const JsonCall& a, const JsonCall& b) {
                      if (a.begin_ns != b.begin_ns) return a.begin_ns < b.begin_ns;
                      if (a.end_ns != b.end_ns) return a.end_ns > b.end_ns;
                      return a.written > b.written;
                  });
        std::vector<std::int64_t> ends;  // of the open calls
        for (const JsonCall& call : thread.calls) {
            while (!ends.empty() && ends.back() <= call.begin_ns) {
                visitor.end(key, ends.back());
                ends.pop_back();
            }
            visitor.begin(key, names[call.name], call.begin_ns);
            // A call that overlaps the end of the one it began in ends with it.
            ends.push_back(ends.empty() ? call.end_ns : std::min(call.end_ns, ends.back()));
        }
        while (!ends.empty()) {
            visitor.end(key, ends.back());
            ends.pop_back();
        }
    }
    CallReadResult result;
    result.format = format;
    result.instants = events.instants;
    result.counter_values = events.counter_values;
    return result;
}

}  // namespace

// The unit tests link the parser in: the weak reference then finds it.
#pragma weak vztrace_json_events

decltype(&vztrace_json_events) json_events_parser(std::string& error) {
    if (&vztrace_json_events != nullptr) return &vztrace_json_events;
    static std::string load_error;
    static const auto parser = reinterpret_cast<decltype(&vztrace_json_events)>(
        module_symbol("vztrace-json-events.so", "vztrace_json_events", load_error));
    if (parser == nullptr) error = load_error;
    return parser;
}

CallReadResult read_calls(const std::string& path, CallVisitor& visitor) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return failed(Status::kUnreadable,
                      fmt::format("cannot read {}: {}", path, std::strerror(errno)));
    }
    if (S_ISDIR(st.st_mode)) {
        return failed(Status::kUnreadable, fmt::format("cannot read {}: a directory", path));
    }
    std::string head, error;
    if (!read_head(path, head, error)) return failed(Status::kUnreadable, error);
    if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
        static_cast<unsigned char>(head[1]) == 0x8b) {
        std::string text;
        if (!gunzip(path, text, error)) return failed(Status::kDamaged, error);
        return read_json(path, std::move(text), "json.gz", visitor);
    }
    const auto first = head.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && (head[first] == '{' || head[first] == '[')) {
        std::string text;
        if (!read_whole(path, text, error)) return failed(Status::kUnreadable, error);
        return read_json(path, std::move(text), "json", visitor);
    }
    if (looks_like_perfetto(head)) return read_perfetto(path, visitor);
    return failed(Status::kDamaged,
                  fmt::format("{} is not a trace vztrace can read (Perfetto protobuf, Chrome or "
                              "VizTracer JSON, gzipped JSON)",
                              path));
}

}  // namespace vztrace::format
