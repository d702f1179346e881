#include "tracer/format/call_reader.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tracer/format/json_events.hpp"
#include "tracer/format/module_loader.hpp"
#include "tracer/format/perfetto_reader.hpp"
#include "tracer/format/time_math.hpp"

namespace vztrace::format {
namespace {

using Status = CallReadResult::Status;

CallReadResult failed(Status status, std::string error) {
    CallReadResult result;
    result.status = status;
    result.error = std::move(error);
    return result;
}

// Reads from `fd` into `out` until `limit` bytes are there (0: to the end). A trace may
// come through a pipe (`report <(zcat t.json.gz)`): every byte is read once, never again.
bool read_more(int fd, const std::string& path, std::string& out, std::size_t limit,
               std::string& error) {
    char buffer[1 << 16];
    while (limit == 0 || out.size() < limit) {
        const std::size_t want =
            limit == 0 ? sizeof buffer : std::min(sizeof buffer, limit - out.size());
        const ssize_t n = ::read(fd, buffer, want);
        if (n < 0) {
            if (errno == EINTR) continue;
            error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
            return false;
        }
        if (n == 0) break;
        out.append(buffer, static_cast<std::size_t>(n));
    }
    return true;
}

// Every member of a gzip stream: `head`, the bytes already read, then the rest of `fd`,
// inflated as it is asked for (neither the compressed bytes nor the inflated ones are
// held whole: a gzipped Perfetto trace is read a block at a time).
class Gunzip {
 public:
    Gunzip(int fd, const std::string& path, std::string_view head)
        : fd_(fd), path_(path), in_(head) {
        if (inflateInit2(&stream_, 15 + 16) != Z_OK) {
            error_ = fmt::format("cannot read {}: zlib: out of memory", path);
            return;
        }
        ready_ = true;
        stream_.next_in = reinterpret_cast<Bytef*>(in_.data());
        stream_.avail_in = static_cast<uInt>(in_.size());
    }
    ~Gunzip() {
        if (ready_) inflateEnd(&stream_);
    }
    Gunzip(const Gunzip&) = delete;
    Gunzip& operator=(const Gunzip&) = delete;

    // Appends up to `want` inflated bytes to `out`. After an error (error() says it) or
    // the stream's end, ended() holds and it appends nothing.
    void read(std::string& out, std::size_t want) {
        const std::size_t target = out.size() + want;
        while (error_.empty() && !ended_ && out.size() < target) {
            if (stream_.avail_in == 0 && !input_ended_ && !refill()) break;
            const std::size_t before = out.size();
            out.resize(target);
            stream_.next_out = reinterpret_cast<Bytef*>(out.data() + before);
            stream_.avail_out = static_cast<uInt>(target - before);
            const int code = inflate(&stream_, Z_NO_FLUSH);
            out.resize(target - stream_.avail_out);
            if (code == Z_STREAM_END) {
                // Another member may follow (`cat a.gz b.gz`).
                if (stream_.avail_in == 0 && !input_ended_ && !refill()) break;
                if (stream_.avail_in == 0) {
                    ended_ = true;  // the last member
                } else if (inflateReset(&stream_) != Z_OK) {
                    damaged("damaged");
                }
            } else if (code == Z_BUF_ERROR && input_ended_ && stream_.avail_in == 0) {
                damaged("unexpected end of file");  // cut short
            } else if (code != Z_OK && code != Z_BUF_ERROR) {
                damaged(stream_.msg != nullptr ? stream_.msg : "damaged");
            }
        }
    }
    bool ended() const { return ended_ || !error_.empty(); }
    const std::string& error() const { return error_; }

 private:
    bool refill() {
        in_.clear();
        if (!read_more(fd_, path_, in_, std::size_t{1} << 16, error_)) return false;
        input_ended_ = in_.empty();
        stream_.next_in = reinterpret_cast<Bytef*>(in_.data());
        stream_.avail_in = static_cast<uInt>(in_.size());
        return true;
    }
    void damaged(std::string_view message) {
        error_ = fmt::format("{} is damaged: gzip: {}", path_, message);
    }

    int fd_;
    const std::string& path_;
    std::string in_;
    z_stream stream_{};
    bool ready_ = false;
    bool input_ended_ = false;
    bool ended_ = false;
    std::string error_;
};

// ---- Perfetto ---------------------------------------------------------------------------

// `read_into` feeds the whole trace to the reader: PerfettoReader::read_descriptor, or
// a gzipped trace's inflated blocks.
CallReadResult read_perfetto(const std::string& path, CallVisitor& visitor,
                             const std::function<bool(PerfettoReader&)>& read_into) {
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
        if (slice.unfinished) {
            visitor.end_unfinished(slice.track_uuid, slice.end_ns);
        } else {
            visitor.end(slice.track_uuid, slice.end_ns);
        }
    };
    reader.on_instant = [&](const DecodedInstant&) { ++result.instants; };
    reader.on_counter = [&](const DecodedCounter&) { ++result.counter_values; };
    const bool ok = read_into(reader);
    if (!ok && !reader.truncated()) {
        return failed(Status::kDamaged, fmt::format("{} is damaged: {}", path, reader.error()));
    }
    if (!ok && reader.packets() == 0) {
        // Cut short before its first whole packet: nothing says it is a trace at all (a
        // text file that starts with a newline begins as a Perfetto packet does).
        return failed(Status::kDamaged,
                      fmt::format("{} is not a trace vztrace can read (Perfetto protobuf, "
                                  "Chrome or VizTracer JSON, gzipped JSON)",
                                  path));
    }
    result.calls_left_open = reader.open_calls().size();
    reader.close_open_calls();  // a killed writer's calls end at their thread's last event
    result.format = "perfetto";
    result.truncated = reader.truncated();
    result.ends_early = !result.truncated && reader.closing_missing();
    result.realtime_offset_ns = reader.realtime_offset_ns();
    for (const auto& [key, value] : reader.metadata()) {
        if (!key.starts_with("vztrace.")) continue;
        result.recorder = "vztrace";
        result.recording.emplace_back(key.substr(8), value);
    }
    const auto& tracks = reader.tracks();
    NamedTrackTids track_tids;
    for (const auto& [uuid, track] : tracks) {
        if (!track.is_thread && !with_slices.contains(uuid)) continue;
        const auto process = tracks.find(track.parent_uuid);
        const std::string_view process_name =
            process != tracks.end() ? std::string_view(process->second.name) : std::string_view();
        if (track.is_thread) {
            visitor.thread(uuid, track.pid, track.tid, process_name, track.name);
        } else {
            visitor.named_track(uuid, track.pid, track_tids.of(uuid), process_name, track.name);
        }
    }
    return result;
}

// ---- Chrome JSON (vztrace's, VizTracer's) -----------------------------------------------

struct JsonCall {
    std::int64_t begin_ns;
    std::int64_t end_ns;
    std::uint32_t name;
    bool unfinished = false;    // "args": {"unfinished": true}, or a B never ended
    std::uint32_t written = 0;  // its place in the file, among its thread's calls
};

struct JsonThread {
    std::int64_t pid = 0;
    std::int64_t tid = 0;
    std::vector<JsonCall> calls;
    struct Open {  // a B event not yet ended
        std::int64_t begin_ns;
        std::uint32_t name;
        bool with_args;
    };
    std::vector<Open> open;
    // Its B and E events, paired once all are read and put in time order: the format does
    // not ask for them to be written in it, and paired as written, a B's E written before
    // an earlier E ended the wrong call (hunt AT).
    struct Mark {
        std::int64_t ns;
        std::uint32_t name;  // a B's
        bool begin;
        bool with_args;
        bool unfinished;  // an E's
    };
    std::vector<Mark> marks;
    std::int64_t last_ns = INT64_MIN;  // its latest time seen

    // Pairs the marks: an E ends the innermost B open at its time. `with_args`: a call of
    // them had arguments on its B or E.
    void pair_marks(std::uint64_t& calls_with_args) {
        std::stable_sort(marks.begin(), marks.end(),
                         [](const Mark& a, const Mark& b) { return a.ns < b.ns; });
        for (const Mark& mark : marks) {
            if (mark.begin) {
                open.push_back({mark.ns, mark.name, mark.with_args});
            } else if (!open.empty()) {
                const auto [begin, id, with_args] = open.back();
                open.pop_back();
                if (with_args || mark.with_args) ++calls_with_args;
                calls.push_back(JsonCall{begin, mark.ns, id, mark.unfinished});
            }
        }
        std::vector<Mark>().swap(marks);
    }
};

std::int64_t micros_to_ns(double micros) { return std::llround(micros * 1000.0); }

// What read_json gathers from the module's events (the callback may not throw: the
// module's frames are between it and any handler).
struct JsonEvents {
    std::map<std::pair<std::int64_t, std::int64_t>, JsonThread> threads;
    std::map<std::int64_t, std::string> process_names;
    std::map<std::pair<std::int64_t, std::int64_t>, std::string> thread_names;
    std::set<std::pair<std::int64_t, std::int64_t>> named_tracks;  // kNamedTrackMark's
    std::unordered_map<std::string, std::uint32_t> name_ids;
    std::vector<std::string> names;
    std::string error;  // the first event that makes the trace damaged
    bool out_of_memory = false;
    // The earliest and latest times of calls: a trace written from these lifts them all
    // so that the earliest is 0 (Perfetto's times are unsigned), which the latest must
    // survive within the times a trace may hold.
    std::int64_t earliest_ns = INT64_MAX;
    std::int64_t latest_ns = INT64_MIN;
    std::uint64_t instants = 0;
    std::uint64_t counter_values = 0;
    std::uint64_t other_events = 0;     // of other phases than X, B, E, i, I, C and M
    std::uint64_t calls_with_args = 0;  // on their X, B or E event
    std::string recorder;
    std::vector<std::pair<std::string, std::string>> recording;

    std::uint32_t name_id(std::string_view name) {
        const auto [it, added] =
            name_ids.emplace(std::string(name), static_cast<std::uint32_t>(names.size()));
        if (added) names.emplace_back(name);
        return it->second;
    }

    void add(const VztraceJsonEvent& event) {
        const std::string_view phase(event.phase, event.phase_size);
        const std::string_view name(event.name, event.name_size);
        if (event.is_metadata) {
            recorder = phase == "vztrace_metadata" ? "vztrace" : "viztracer";
            recording.emplace_back(name, std::string_view(event.label, event.label_size));
            return;
        }
        if (phase == "M") {
            if (event.label == nullptr) return;
            const std::string_view label(event.label, event.label_size);
            if (name == "process_name") process_names[event.pid] = std::string(label);
            if (name == "thread_name") thread_names[{event.pid, event.tid}] = std::string(label);
            if (name == kNamedTrackMark) named_tracks.insert({event.pid, event.tid});
            return;
        }
        if (phase == "i" || phase == "I") {
            ++instants;
        } else if (phase == "C") {
            ++counter_values;
        } else if (phase != "X" && phase != "B" && phase != "E") {
            ++other_events;  // objects, async slices, flows, marks...: not left out unsaid
        }
        if (phase != "X" && phase != "B" && phase != "E") return;
        if (!event.has_ts) {
            error = fmt::format("an event \"{}\" has no time", name);
            return;
        }
        // Times in nanoseconds, begins and ends, within kLongestTime either side of 0 (73
        // years, time_math.hpp), as the Perfetto reader takes them: the difference of any two
        // fits in 64 bits, and what one reader takes the other takes back once exported.
        // The first test keeps the conversion itself within 64 bits.
        constexpr double kConvertibleMicros = 4e15;
        const bool convertible = std::fabs(event.ts) <= kConvertibleMicros &&
                                 (!event.has_dur || std::fabs(event.dur) <= kConvertibleMicros);
        const std::int64_t begin_ns = convertible ? micros_to_ns(event.ts) : 0;
        const std::int64_t end_ns =
            begin_ns +
            (convertible && event.has_dur && event.dur > 0 ? micros_to_ns(event.dur) : 0);
        if (!convertible || begin_ns > kLongestTime || begin_ns < -kLongestTime ||
            end_ns > kLongestTime) {
            const bool at_begin = !(std::fabs(event.ts) <= kConvertibleMicros) ||
                                  begin_ns > kLongestTime || begin_ns < -kLongestTime;
            error = fmt::format("an event \"{}\" has a time out of range ({} us)", name,
                                at_begin ? event.ts : event.ts + event.dur);
            return;
        }
        earliest_ns = std::min(earliest_ns, begin_ns);
        latest_ns = std::max(latest_ns, end_ns);
        if (latest_ns - earliest_ns > kLongestTime) {
            error = "its events' times span more than 73 years";
            return;
        }
        JsonThread& thread = threads[{event.pid, event.tid}];
        thread.pid = event.pid;
        thread.tid = event.tid;
        thread.last_ns = std::max(thread.last_ns, micros_to_ns(event.ts));
        if (phase == "X") {
            if (event.has_args) ++calls_with_args;
            const std::int64_t begin = micros_to_ns(event.ts);
            const double dur = event.has_dur ? event.dur : 0;
            thread.calls.push_back(
                JsonCall{begin, begin + micros_to_ns(dur), name_id(name), event.unfinished});
            thread.last_ns = std::max(thread.last_ns, thread.calls.back().end_ns);
        } else {
            const bool begin = phase == "B";
            thread.marks.push_back({micros_to_ns(event.ts), begin ? name_id(name) : 0, begin,
                                    event.has_args, event.unfinished});
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
                          fmt::format("{} is not a trace: a JSON file with no trace events", path));
        case kVztraceJsonDamaged:
            return failed(Status::kDamaged, fmt::format("{} is damaged: JSON: {}", path, why));
        case kVztraceJsonOutOfMemory:
            throw std::bad_alloc();  // as the rest of reading says it (launcher/main.cpp)
    }
    if (events.out_of_memory) throw std::bad_alloc();
    if (!events.error.empty()) {
        return failed(Status::kDamaged, fmt::format("{} is damaged: {}", path, events.error));
    }
    auto& threads = events.threads;
    auto& process_names = events.process_names;
    auto& thread_names = events.thread_names;
    auto& names = events.names;
    // A thread to the visitor, named as the trace names it and its process.
    const auto describe = [&](std::uint64_t key, std::int64_t pid, std::int64_t tid) {
        const auto process = process_names.find(pid);
        const auto named = thread_names.find({pid, tid});
        const std::string process_name =
            process != process_names.end() ? process->second : std::string();
        const std::string thread_name = named != thread_names.end() ? named->second : std::string();
        // vztrace's JSON writes a named track as a thread it marks as such.
        if (events.named_tracks.contains({pid, tid})) {
            visitor.named_track(key, pid, tid, process_name, thread_name);
        } else {
            visitor.thread(key, pid, tid, process_name, thread_name);
        }
    };
    std::uint64_t key = 0;
    for (auto& [ids, thread] : threads) {
        describe(++key, thread.pid, thread.tid);
        thread.pair_marks(events.calls_with_args);
        // A B with no E (a call the trace ended in) ends at the thread's last time, as
        // Perfetto shows it: outermost first, as their B events were written.
        for (const auto& [begin, id, with_args] : thread.open) {
            if (with_args) ++events.calls_with_args;
            thread.calls.push_back(JsonCall{begin, std::max(begin, thread.last_ns), id, true});
        }
        thread.open.clear();
        // Parents before children: by begin, the longer first, and of calls with the same
        // begin and end, the one written first, as Perfetto and chrome://tracing nest them
        // (format/chrome_json.cpp writes such calls, those a ring's cut began and the end
        // found open, outermost first).
        for (std::size_t i = 0; i < thread.calls.size(); ++i) {
            thread.calls[i].written = static_cast<std::uint32_t>(i);
        }
        std::sort(thread.calls.begin(), thread.calls.end(),
                  [](const JsonCall& a, const JsonCall& b) {
                      if (a.begin_ns != b.begin_ns) return a.begin_ns < b.begin_ns;
                      if (a.end_ns != b.end_ns) return a.end_ns > b.end_ns;
                      return a.written < b.written;
                  });
        struct End {
            std::int64_t ns;
            bool unfinished;
        };
        std::vector<End> ends;  // of the open calls
        const auto end_innermost = [&] {
            if (ends.back().unfinished) {
                visitor.end_unfinished(key, ends.back().ns);
            } else {
                visitor.end(key, ends.back().ns);
            }
            ends.pop_back();
        };
        for (const JsonCall& call : thread.calls) {
            while (!ends.empty() && ends.back().ns <= call.begin_ns) end_innermost();
            visitor.begin(key, names[call.name], call.begin_ns);
            // A call that overlaps the end of the one it began in ends with it.
            if (ends.empty() || call.end_ns <= ends.back().ns) {
                ends.push_back({call.end_ns, call.unfinished});
            } else {
                ends.push_back({ends.back().ns, call.unfinished});
            }
        }
        while (!ends.empty()) end_innermost();
    }
    // A thread named but without a call (a process whose calls were not recorded): one of
    // the trace's threads still, as a Perfetto trace's descriptor makes it.
    for (const auto& [ids, name] : thread_names) {
        if (!threads.contains(ids)) describe(++key, ids.first, ids.second);
    }
    CallReadResult result;
    result.format = format;
    result.instants = events.instants;
    result.counter_values = events.counter_values;
    result.other_events = events.other_events;
    result.calls_with_args = events.calls_with_args;
    result.recorder = std::move(events.recorder);
    result.recording = std::move(events.recording);
    // vztrace's own JSON keeps the CLOCK_REALTIME reading its Perfetto traces have (its
    // times are CLOCK_MONOTONIC's too); VizTracer's (since 1.0) has the same reading, its
    // times being CLOCK_MONOTONIC's as well, as "baseTimeNanoseconds": the epoch's
    // nanoseconds minus CLOCK_MONOTONIC's (hunt AT: combine refused every such file).
    if (result.recorder == "vztrace" || result.recorder == "viztracer") {
        const std::string_view clock_key =
            result.recorder == "vztrace" ? "realtime_offset_ns" : "baseTimeNanoseconds";
        for (const auto& [name, value] : result.recording) {
            if (name != clock_key) continue;
            std::int64_t offset = 0;
            const char* end = value.data() + value.size();
            const auto [at, problem] = std::from_chars(value.data(), end, offset);
            if (problem == std::errc() && at == end && offset <= kLongestOffset &&
                offset >= -kLongestOffset) {
                result.realtime_offset_ns = offset;
            }
        }
    }
    return result;
}

// "[12,34]" (a list of pids in vztrace's metadata) as its numbers; what is not one is
// left out.
std::vector<std::string> listed(std::string_view text) {
    std::vector<std::string> items;
    if (text.size() < 2 || text.front() != '[' || text.back() != ']') return items;
    text = text.substr(1, text.size() - 2);
    while (!text.empty()) {
        const std::size_t comma = text.find(',');
        std::string_view item = text.substr(0, comma);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        if (!item.empty() && item.find_first_not_of("-0123456789") == std::string_view::npos)
            items.emplace_back(item);
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return items;
}

std::uint64_t count_of(std::string_view text) {
    if (text.size() > 19) return 0;  // not a count vztrace wrote
    std::uint64_t value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') return 0;
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return value;
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

std::vector<RecordingGap> recording_gaps(const CallReadResult& read) {
    const auto value = [&read](std::string_view key) -> std::string_view {
        for (const auto& [k, v] : read.recording) {
            if (k == key) return v;
        }
        return {};
    };
    std::vector<RecordingGap> gaps;
    if (read.recorder == "viztracer") {
        if (value("overflow") == "true") {
            gaps.push_back({true,
                            "VizTracer's buffer was full: it kept the newest entries only "
                            "(--tracer_entries), the older ones are not in the trace"});
        }
        return gaps;
    }
    if (read.recorder != "vztrace") return gaps;
    if (const std::uint64_t n = count_of(value("dropped_events")); n > 0) {
        gaps.push_back(
            {true, value("memory_refused") == "true" && value("size_cap_reached") != "true"
                       ? fmt::format("{} events were not recorded: the system refused memory "
                                     "for their records",
                                     n)
                       : fmt::format("{} events were not recorded: the trace reached its "
                                     "--max-size",
                                     n)});
    }
    if (value("memory_refused") == "true" && count_of(value("dropped_events")) == 0) {
        // With a ring, the memory refused was the ring's: it wrapped sooner than asked.
        gaps.push_back(
            {true, count_of(value("overwritten_events")) > 0
                       ? "the system refused memory for the ring (a limit on the address "
                         "space?): it kept fewer of the newest events than --ring asked for"
                       : "the recording stopped early: the system refused vztrace memory (a "
                         "limit on the address space?), and the calls after that are not in "
                         "the trace"});
    }
    // One line for all the processes of a kind, however many (a tree of 200,000 gave as
    // many lines).
    const auto named = [](const std::vector<std::string>& pids) {
        constexpr std::size_t kShown = 10;
        if (pids.size() <= kShown) return fmt::format("{}", fmt::join(pids, ", "));
        return fmt::format("{} and {} more", fmt::join(pids.begin(), pids.begin() + kShown, ", "),
                           pids.size() - kShown);
    };
    // `line` words it for one process or for several: (who, one).
    const auto about = [&](std::string_view key, auto line) {
        const std::vector<std::string> pids = listed(value(key));
        if (pids.empty()) return;
        const bool one = pids.size() == 1;
        gaps.push_back(
            {true, line(fmt::format("process{} {}", one ? "" : "es", named(pids)), one)});
    };
    // The metadata does not say which: a child still running at the root's end is named
    // there too.
    about("incomplete_pids", [](const std::string& who, bool one) {
        return fmt::format(
            "{} {} killed, crashed or outlived the root's wait: {} calls after "
            "the last {} had written are not in the trace",
            who, one ? "was" : "were", one ? "its" : "their", one ? "it" : "each");
    });
    about("missing_pids", [](const std::string& who, bool one) {
        return fmt::format("{} left no trace (killed or crashed): none of {} calls are in it", who,
                           one ? "its" : "their");
    });
    if (const std::uint64_t n = count_of(value("subinterpreters")); n > 0) {
        const std::vector<std::string> pids = listed(value("subinterpreter_pids"));
        gaps.push_back({true, fmt::format("the program created {} subinterpreter{} (process{} {}): "
                                          "vztrace records the main interpreter only, so the "
                                          "calls run in {} are not in the trace",
                                          n, n == 1 ? "" : "s", pids.size() == 1 ? "" : "es",
                                          named(pids), n == 1 ? "it" : "them")});
    }
    if (const std::uint64_t n = count_of(value("overwritten_events")); n > 0) {
        gaps.push_back({false, fmt::format("it holds the newest events alone (--ring): {} older "
                                           "events were overwritten",
                                           n)});
    }
    return gaps;
}

CallReadResult read_calls(const std::string& path, CallVisitor& visitor) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0) {
        const int error = errno;
        if (fd >= 0) ::close(fd);
        return failed(Status::kUnreadable,
                      fmt::format("cannot read {}: {}", path, std::strerror(error)));
    }
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    if (S_ISDIR(st.st_mode)) {
        return failed(Status::kUnreadable, fmt::format("cannot read {}: a directory", path));
    }
    std::string head, error;
    if (!read_more(fd, path, head, 64, error)) return failed(Status::kUnreadable, error);
    constexpr std::string_view kJsonSpace = " \t\r\n";
    const auto looks_like_json = [kJsonSpace](std::string_view text) {
        const auto first = text.find_first_not_of(kJsonSpace);
        return first != std::string_view::npos && (text[first] == '{' || text[first] == '[');
    };
    // JSON may open with any amount of whitespace (a pretty-printer's): read on to its first
    // other byte (a Perfetto trace's first, 0x0a, is a newline too, but never all of 64).
    // Each new piece is looked at once (looking at all again took minutes for 64 MiB).
    std::size_t seen = 0;
    while (head.size() >= 64 && head.find_first_not_of(kJsonSpace, seen) == std::string::npos) {
        const std::size_t before = head.size();
        seen = before;
        if (!read_more(fd, path, head, before + (std::size_t{1} << 16), error)) {
            return failed(Status::kUnreadable, error);
        }
        if (head.size() == before) break;
    }
    if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
        static_cast<unsigned char>(head[1]) == 0x8b) {
        Gunzip gunzip(fd, path, head);
        std::string text;
        while (text.size() < 64 && !gunzip.ended()) gunzip.read(text, 64 - text.size());
        if (!gunzip.error().empty()) return failed(Status::kDamaged, gunzip.error());
        if (looks_like_json(text)) {
            while (!gunzip.ended()) gunzip.read(text, std::size_t{1} << 20);
            if (!gunzip.error().empty()) return failed(Status::kDamaged, gunzip.error());
            return read_json(path, std::move(text), "json.gz", visitor);
        }
        if (looks_like_perfetto(text)) {
            // A gzipped Perfetto trace (trace_processor reads them too), a block at a time.
            CallReadResult result = read_perfetto(path, visitor, [&](PerfettoReader& reader) {
                bool ok = reader.feed(text);
                std::string block;
                while (ok && !gunzip.ended()) {
                    block.clear();
                    gunzip.read(block, std::size_t{4} << 20);
                    ok = reader.feed(block);
                }
                return ok && reader.finish();
            });
            if (!gunzip.error().empty()) return failed(Status::kDamaged, gunzip.error());
            if (result.status == Status::kOk) result.format = "perfetto.gz";
            return result;
        }
        return failed(Status::kDamaged,
                      fmt::format("{} is gzipped, but not a trace vztrace can read (Perfetto "
                                  "protobuf or Chrome or VizTracer JSON)",
                                  path));
    }
    // A Perfetto trace's first bytes, a packet's tag and length, may be "\n[" or "\n{", as
    // a JSON file's: what follows tells them apart, and a .json name where both could be.
    // Packets' tags and lengths are control bytes (0x08, 0x12, ...) or past ASCII (0xa2 0x38
    // for field 900): a head of printable ASCII and JSON's whitespace alone is text (newlines
    // read as nested fields for 64 bytes, and a JSON trace from a pipe was refused as a
    // damaged Perfetto trace).
    const auto text_alone = [](std::string_view text) {
        return std::all_of(text.begin(), text.end(), [](char c) {
            const auto byte = static_cast<unsigned char>(c);
            return (byte >= 0x20 && byte < 0x7f) || byte == '\t' || byte == '\n' || byte == '\r';
        });
    };
    const bool perfetto = looks_like_perfetto(head);
    if (looks_like_json(head) && (!perfetto || path.ends_with(".json") ||
                                  text_alone(std::string_view(head).substr(0, 64)))) {
        std::string text = std::move(head);
        if (!read_more(fd, path, text, 0, error)) return failed(Status::kUnreadable, error);
        return read_json(path, std::move(text), "json", visitor);
    }
    // 0x0a alone: a damaged trace, which the reader says where.
    if (perfetto || (!head.empty() && static_cast<unsigned char>(head[0]) == 0x0a)) {
        return read_perfetto(path, visitor, [&](PerfettoReader& reader) {
            return reader.read_descriptor(fd, path, head);
        });
    }
    return failed(Status::kDamaged,
                  fmt::format("{} is not a trace vztrace can read (Perfetto protobuf, Chrome or "
                              "VizTracer JSON, gzipped JSON)",
                              path));
}

}  // namespace vztrace::format
