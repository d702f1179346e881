#include "tracer/format/call_reader.hpp"

#include <fmt/format.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <unordered_map>
#include <vector>

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
    reader.on_begin = [&](std::uint64_t track, std::string_view name, std::int64_t ns) {
        visitor.begin(track, name, ns);
    };
    reader.on_slice = [&](const DecodedSlice& slice) {
        visitor.end(slice.track_uuid, slice.end_ns);
    };
    const bool ok = reader.read_file(path);
    if (!ok && !reader.truncated()) {
        return failed(Status::kDamaged, fmt::format("{} is damaged: {}", path, reader.error()));
    }
    reader.close_open_calls();  // a killed writer's calls end at their thread's last event
    CallReadResult result;
    result.format = "perfetto";
    result.truncated = reader.truncated();
    result.realtime_offset_ns = reader.realtime_offset_ns();
    const auto& tracks = reader.tracks();
    for (const auto& [uuid, track] : tracks) {
        if (!track.is_thread) continue;
        const auto process = tracks.find(track.parent_uuid);
        const std::string_view process_name =
            process != tracks.end() ? std::string_view(process->second.name) : std::string_view();
        visitor.thread(uuid, track.pid, track.tid, process_name, track.name);
    }
    return result;
}

// ---- Chrome JSON (vztrace's, VizTracer's) -----------------------------------------------

struct JsonCall {
    std::int64_t begin_ns;
    std::int64_t end_ns;
    std::uint32_t name;
};

struct JsonThread {
    std::int64_t pid = 0;
    std::int64_t tid = 0;
    std::vector<JsonCall> calls;
    std::vector<std::pair<std::int64_t, std::uint32_t>> open;  // B events not yet ended
};

std::int64_t micros_to_ns(double micros) { return std::llround(micros * 1000.0); }

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

CallReadResult read_json(const std::string& path, std::string text, const char* format,
                         CallVisitor& visitor) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    text.reserve(text.size() + simdjson::SIMDJSON_PADDING);
    if (const auto error = parser.parse(text.data(), text.size(), false).get(root)) {
        return failed(Status::kDamaged,
                      fmt::format("{} is damaged: JSON: {}", path, simdjson::error_message(error)));
    }
    // {"traceEvents": [...]} or, in Chrome's array form, the events alone.
    simdjson::dom::array events;
    if (root.is_array()) {
        events = root.get_array();
    } else if (root["traceEvents"].get(events) != simdjson::SUCCESS) {
        return failed(Status::kDamaged,
                      fmt::format("{} is not a trace: a JSON file with no traceEvents", path));
    }
    std::map<std::pair<std::int64_t, std::int64_t>, JsonThread> threads;
    std::map<std::int64_t, std::string> process_names;
    std::map<std::pair<std::int64_t, std::int64_t>, std::string> thread_names;
    std::unordered_map<std::string, std::uint32_t> name_ids;
    std::vector<std::string> names;
    const auto name_id = [&](std::string_view name) {
        const auto [it, added] =
            name_ids.emplace(std::string(name), static_cast<std::uint32_t>(names.size()));
        if (added) names.emplace_back(name);
        return it->second;
    };
    for (simdjson::dom::element event : events) {
        std::string_view phase, name;
        if (!event.is_object() || event["ph"].get(phase) != simdjson::SUCCESS) continue;
        std::int64_t pid = 0, tid = 0;
        simdjson::dom::element value;
        if (event["pid"].get(value) == simdjson::SUCCESS) integer_of(value, pid);
        if (event["tid"].get(value) == simdjson::SUCCESS) integer_of(value, tid);
        if (event["name"].get(name) != simdjson::SUCCESS) name = {};
        if (phase == "M") {
            std::string_view label;
            if (event["args"]["name"].get(label) != simdjson::SUCCESS) continue;
            if (name == "process_name") process_names[pid] = std::string(label);
            if (name == "thread_name") thread_names[{pid, tid}] = std::string(label);
            continue;
        }
        if (phase != "X" && phase != "B" && phase != "E") continue;
        double ts = 0;
        if (event["ts"].get(value) != simdjson::SUCCESS || !number_of(value, ts) ||
            !std::isfinite(ts)) {
            return failed(Status::kDamaged,
                          fmt::format("{} is damaged: an event \"{}\" has no time", path, name));
        }
        JsonThread& thread = threads[{pid, tid}];
        thread.pid = pid;
        thread.tid = tid;
        if (phase == "X") {
            double dur = 0;
            if (event["dur"].get(value) == simdjson::SUCCESS && !number_of(value, dur)) dur = 0;
            if (!std::isfinite(dur) || dur < 0) dur = 0;
            const std::int64_t begin = micros_to_ns(ts);
            thread.calls.push_back(JsonCall{begin, begin + micros_to_ns(dur), name_id(name)});
        } else if (phase == "B") {
            thread.open.emplace_back(micros_to_ns(ts), name_id(name));
        } else if (!thread.open.empty()) {  // E ends the innermost B
            const auto [begin, id] = thread.open.back();
            thread.open.pop_back();
            thread.calls.push_back(JsonCall{begin, std::max(begin, micros_to_ns(ts)), id});
        }
    }
    std::uint64_t key = 0;
    for (auto& [ids, thread] : threads) {
        ++key;
        const auto process = process_names.find(ids.first);
        const auto named = thread_names.find(ids);
        visitor.thread(key, thread.pid, thread.tid,
                       process != process_names.end() ? process->second : std::string(),
                       named != thread_names.end() ? named->second : std::string());
        // Parents before children: by begin, the longer first.
        std::stable_sort(thread.calls.begin(), thread.calls.end(),
                         [](const JsonCall& a, const JsonCall& b) {
                             if (a.begin_ns != b.begin_ns) return a.begin_ns < b.begin_ns;
                             return a.end_ns > b.end_ns;
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
    return result;
}

}  // namespace

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
