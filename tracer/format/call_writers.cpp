#include "tracer/format/call_writers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <tuple>
#include <unordered_map>

#include "tracer/format/chrome_json.hpp"
#include "tracer/format/perfetto_encoder.hpp"
#include "tracer/format/time_math.hpp"

namespace vztrace::format {
namespace {

std::string json_text(std::string_view text) {
    std::string out;
    append_json_string(out, text);
    return out;
}

// Walks a thread's calls: `on_end(name, begin_ns, end_ns, unfinished)` at each end.
template <typename OnEnd>
void walk(const CallLog::Thread& thread, OnEnd&& on_end) {
    std::vector<std::pair<std::uint32_t, std::int64_t>> open;
    for (const CallLog::Event& event : thread.events) {
        if (!CallLog::is_end(event.name)) {
            open.emplace_back(event.name, event.ns);
            continue;
        }
        if (open.empty()) continue;
        const auto [name, begin] = open.back();
        open.pop_back();
        on_end(name, begin, std::max(event.ns, begin), event.name == CallLog::kEndUnfinished);
    }
}

}  // namespace

// ---- Chrome JSON ------------------------------------------------------------------------

bool write_json(const CallLog& calls, std::span<const std::pair<std::string, std::string>> metadata,
                const WriteBytes& write) {
    std::string text = "{\"traceEvents\": [\n";
    bool first = true;
    const auto add = [&](const std::string& event) {
        text += first ? " " : ",\n ";
        text += event;
        first = false;
    };
    std::map<std::int64_t, std::string> processes;
    for (const CallLog::Thread* thread : calls.threads()) {
        processes.emplace(thread->pid, thread->process_name);
        add(fmt::format(R"({{"ph": "M", "pid": {}, "tid": {}, "name": "thread_name", )"
                        R"("args": {{"name": {}}}}})",
                        thread->pid, thread->tid, json_text(thread->thread_name)));
        if (thread->track) {
            add(fmt::format(R"({{"ph": "M", "pid": {}, "tid": {}, "name": "{}", )"
                            R"("args": {{"name": "asyncio task"}}}})",
                            thread->pid, thread->tid, kNamedTrackMark));
        }
    }
    for (const auto& [pid, name] : processes) {
        add(fmt::format(R"({{"ph": "M", "pid": {}, "tid": {}, "name": "process_name", )"
                        R"("args": {{"name": {}}}}})",
                        pid, pid, json_text(name)));
    }
    bool ok = write(text);
    text.clear();
    for (const CallLog::Thread* thread : calls.threads()) {
        walk(*thread,
             [&](std::uint32_t name, std::int64_t begin, std::int64_t end, bool unfinished) {
                 add(fmt::format(R"({{"ph": "X", "pid": {}, "tid": {}, "ts": {}, "dur": {}, )"
                                 R"("name": {}{}}})",
                                 thread->pid, thread->tid, micros_text(begin),
                                 micros_text(end - begin), json_text(calls.name(name)),
                                 unfinished ? R"(, "args": {"unfinished": true})" : ""));
                 if (text.size() > (std::size_t{1} << 20)) {
                     ok = ok && write(text);
                     text.clear();
                 }
             });
    }
    text += "\n], \"displayTimeUnit\": \"ns\"";
    if (!metadata.empty()) {
        text += ", \"vztrace_metadata\": {";
        bool first_key = true;
        for (const auto& [key, value] : metadata) {
            text +=
                fmt::format("{}{}: {}", first_key ? "" : ", ", json_text(key), json_text(value));
            first_key = false;
        }
        text += "}";
    }
    text += "}\n";
    return ok && write(text);
}

// ---- speedscope (evented profiles, one a thread) ----------------------------------------

bool write_speedscope(const CallLog& calls, const std::string& title, const WriteBytes& write) {
    std::string text =
        "{\"$schema\": \"https://www.speedscope.app/file-format-schema.json\", "
        "\"exporter\": \"vztrace\", \"name\": " +
        json_text(title) + ", \"activeProfileIndex\": 0, \"shared\": {\"frames\": [";
    for (std::uint32_t id = 0; id < calls.name_count(); ++id) {
        text += fmt::format("{}{{\"name\": {}}}", id == 0 ? "" : ", ", json_text(calls.name(id)));
    }
    text += "]}, \"profiles\": [";
    bool ok = true;
    bool first_profile = true;
    // One time axis for every profile, from the trace's first event: a thread started late
    // starts late in speedscope too.
    std::int64_t origin = std::numeric_limits<std::int64_t>::max();
    for (const CallLog::Thread* thread : calls.threads()) {
        if (!thread->events.empty()) origin = std::min(origin, thread->events.front().ns);
    }
    for (const CallLog::Thread* thread : calls.threads()) {
        if (thread->events.empty()) continue;
        // speedscope wants times that never go back: each event is at the latest time so
        // far, and the profile ends at the latest of all.
        std::int64_t last = thread->events.front().ns;
        for (const CallLog::Event& event : thread->events) last = std::max(last, event.ns);
        const std::string process =
            thread->process_name.empty()
                ? fmt::format("process {}", thread->pid)
                : fmt::format("{} (pid {})", thread->process_name, thread->pid);
        const std::string name = fmt::format(
            "{}, {} {}", process, thread->track ? "track" : "thread",
            thread->thread_name.empty() ? std::to_string(thread->tid) : thread->thread_name);
        text += fmt::format(
            "{}{{\"type\": \"evented\", \"name\": {}, \"unit\": \"nanoseconds\", "
            "\"startValue\": {}, \"endValue\": {}, \"events\": [",
            first_profile ? "" : ", ", json_text(name), thread->events.front().ns - origin,
            last - origin);
        first_profile = false;
        // The events go out a few MiB at a time: their text is several times the calls'.
        std::int64_t at = thread->events.front().ns;
        std::vector<std::uint32_t> open;
        bool first_event = true;
        for (const CallLog::Event& event : thread->events) {
            at = std::max(at, event.ns);
            if (!CallLog::is_end(event.name)) {
                open.push_back(event.name);
                text += fmt::format("{}{{\"type\": \"O\", \"frame\": {}, \"at\": {}}}",
                                    first_event ? "" : ", ", event.name, at - origin);
            } else if (!open.empty()) {
                text += fmt::format("{}{{\"type\": \"C\", \"frame\": {}, \"at\": {}}}",
                                    first_event ? "" : ", ", open.back(), at - origin);
                open.pop_back();
            } else {
                continue;
            }
            first_event = false;
            if (text.size() > (std::size_t{4} << 20)) {
                ok = ok && write(text);
                text.clear();
            }
        }
        text += "]}";
    }
    text += "]}\n";
    return ok && write(text);
}

// ---- collapsed stacks -------------------------------------------------------------------

FoldedStacks::Thread& FoldedStacks::thread_of(std::uint64_t key) {
    const auto [at, added] = threads_.try_emplace(key);
    if (added) {
        at->second.root = static_cast<std::uint32_t>(nodes_.size());
        nodes_.push_back({kNoParent, static_cast<std::uint32_t>(root_keys_.size())});
        root_keys_.push_back(key);
    }
    return at->second;
}

void FoldedStacks::begin(std::uint64_t key, std::string_view name, std::int64_t ns) {
    Thread& thread = thread_of(key);
    const std::uint32_t parent = thread.open.empty() ? thread.root : thread.open.back().node;
    const std::uint32_t id = names_.id(name);
    const auto [at, added] = child_of_.try_emplace((std::uint64_t{parent} << 32) | id,
                                                   static_cast<std::uint32_t>(nodes_.size()));
    if (added) nodes_.push_back({parent, id});
    thread.open.push_back({at->second, ns, 0});
}

void FoldedStacks::end(std::uint64_t key, std::int64_t ns) {
    Thread& thread = thread_of(key);
    if (thread.open.empty()) return;
    const Open call = thread.open.back();
    thread.open.pop_back();
    const std::int64_t duration = length_ns(call.begin_ns, ns);
    add_saturating(nodes_[call.node].self_ns, std::max<std::int64_t>(duration - call.child_ns, 0));
    nodes_[call.node].ended = true;
    if (!thread.open.empty()) add_saturating(thread.open.back().child_ns, duration);
}

bool FoldedStacks::write(const WriteBytes& write) const {
    // ';' separates frames, a line ends a stack: neither may be in a name, nor another
    // control character (a '\r' ends a line for some readers, a NUL the text for others).
    // The readers take the count after the last space, so spaces may.
    std::vector<std::string> names(names_.size());
    for (std::uint32_t id = 0; id < names_.size(); ++id) {
        for (const char c : names_.name(id)) {
            const auto byte = static_cast<unsigned char>(c);
            names[id] += c == ';' ? ':' : byte < 0x20 || byte == 0x7F ? ' ' : c;
        }
    }
    // Every stack once, in the order of its text, the threads together (names that read
    // the same after the changes above are one stack, as they were).
    std::map<std::string, std::int64_t> stacks;
    std::vector<std::uint32_t> chain;
    for (std::uint32_t id = 0; id < nodes_.size(); ++id) {
        if (!nodes_[id].ended) continue;
        chain.clear();
        std::uint32_t at = id;
        for (; nodes_[at].parent != kNoParent; at = nodes_[at].parent) chain.push_back(at);
        if (is_track(root_keys_[nodes_[at].name])) continue;
        std::string path;
        for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
            if (!path.empty()) path += ';';
            path += names[nodes_[*it].name];
        }
        add_saturating(stacks[path], nodes_[id].self_ns);
    }
    std::string text;
    for (const auto& [path, ns] : stacks) text += fmt::format("{} {}\n", path, ns);
    return write(text);
}

namespace {

// ---- pstats (marshal, as cProfile's dump_stats writes) ----------------------------------

class Marshal {
 public:
    void dict_begin() { out_ += '{'; }
    void dict_end() { out_ += '0'; }
    void tuple(std::uint32_t size) {
        out_ += '(';
        int32(size);
    }
    void text(std::string_view value) {
        out_ += 'u';
        int32(static_cast<std::uint32_t>(value.size()));
        out_ += value;
    }
    void integer(std::int64_t value) {
        if (value >= INT32_MIN && value <= INT32_MAX) {
            out_ += 'i';
            int32(static_cast<std::uint32_t>(static_cast<std::int32_t>(value)));
            return;
        }
        // TYPE_LONG: a count of 15-bit digits (negative for a negative number), then them.
        std::uint64_t magnitude =
            value < 0 ? 0 - static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value);
        std::vector<std::uint16_t> digits;
        while (magnitude > 0) {
            digits.push_back(static_cast<std::uint16_t>(magnitude & 0x7FFF));
            magnitude >>= 15;
        }
        out_ += 'l';
        const auto count = static_cast<std::int32_t>(digits.size());
        int32(static_cast<std::uint32_t>(value < 0 ? -count : count));
        for (const std::uint16_t digit : digits) {
            out_ += static_cast<char>(digit & 0xFF);
            out_ += static_cast<char>(digit >> 8);
        }
    }
    void real(double value) {
        out_ += 'g';
        const auto bits = std::bit_cast<std::uint64_t>(value);
        for (int i = 0; i < 8; ++i) out_ += static_cast<char>((bits >> (8 * i)) & 0xFF);
    }
    const std::string& bytes() const { return out_; }

 private:
    void int32(std::uint32_t value) {
        for (int i = 0; i < 4; ++i) out_ += static_cast<char>((value >> (8 * i)) & 0xFF);
    }
    std::string out_;
};

// cProfile's key of a function: (file, line, name); C functions ('~', 0, "<built-in
// method NAME>"). vztrace names Python functions "qualname (file:line)".
struct ProfileKey {
    std::string file;
    std::int64_t line = 0;
    std::string name;
    auto operator<=>(const ProfileKey&) const = default;
};

// `qualname (file:line)`. The file may hold " (" too ("proj (copy)/s.py"), and so may a
// name (a code object renamed with code.replace, a span "step (phase:2)"): the split is at
// the first " (" whose rest is a place vztrace writes, an absolute path, CPython's
// "<string>" and the like, or none (code compiled from a file named ""). The key's name is the
// code's name, the qualname's last part (after its last '.' outside parentheses), as cProfile's.
ProfileKey key_of(const std::string& name) {
    for (auto open = name.find(" ("); open != std::string::npos && name.back() == ')';
         open = name.find(" (", open + 1)) {
        const std::string place = name.substr(open + 2, name.size() - open - 3);
        const auto colon = place.rfind(':');
        if (colon == std::string::npos || colon + 1 >= place.size()) continue;
        if (place[0] != '/' && place[0] != '<' && colon != 0) continue;  // 0: a file named ""
        char* end = nullptr;
        const long line = std::strtol(place.c_str() + colon + 1, &end, 10);
        if (end == nullptr || *end != '\0') continue;
        const std::string qualname = name.substr(0, open);
        std::size_t last = 0;  // where the last part begins
        int depth = 0;
        for (std::size_t i = 0; i < qualname.size(); ++i) {
            if (qualname[i] == '(') ++depth;
            if (qualname[i] == ')' && depth > 0) --depth;
            if (qualname[i] == '.' && depth == 0) last = i + 1;
        }
        return ProfileKey{place.substr(0, colon), line, qualname.substr(last)};
    }
    return ProfileKey{"~", 0, "<built-in method " + name + ">"};
}

void put_key(Marshal& m, const ProfileKey& key) {
    m.tuple(3);
    m.text(key.file);
    m.integer(key.line);
    m.text(key.name);
}

// A function's numbers: (primitive calls, calls, own time, cumulative time), as cProfile
// writes them; a caller's have the calls first: (calls, primitive calls, ...).
void put_numbers(Marshal& m, const ProfileStats::Numbers& n, bool of_caller = false) {
    m.integer(of_caller ? n.calls : n.primitive);
    m.integer(of_caller ? n.primitive : n.calls);
    m.real(static_cast<double>(n.self_ns) / 1e9);
    m.real(static_cast<double>(n.cumulative_ns) / 1e9);
}

}  // namespace

void ProfileStats::Numbers::add(bool outermost, std::int64_t self, std::int64_t duration) {
    ++calls;
    if (outermost) {
        ++primitive;
        add_saturating(cumulative_ns, duration);
    }
    add_saturating(self_ns, self);
}

void ProfileStats::Numbers::add(const Numbers& other) {
    primitive += other.primitive;
    calls += other.calls;
    add_saturating(self_ns, other.self_ns);
    add_saturating(cumulative_ns, other.cumulative_ns);
}

void ProfileStats::begin(std::uint64_t key, std::string_view name, std::int64_t ns) {
    Thread& thread = threads_[key];
    const std::uint32_t id = names_.id(name);
    if (!thread.names.empty()) ++thread.pairs_open[(std::uint64_t{thread.names.back()} << 32) | id];
    thread.names.push_back(id);
    thread.begins.push_back(ns);
    thread.child.push_back(0);
    ++thread.on_stack[id];
}

void ProfileStats::end(std::uint64_t key, std::int64_t ns) {
    Thread& thread = threads_[key];
    if (thread.names.empty()) return;
    const std::uint32_t id = thread.names.back();
    const std::int64_t duration = length_ns(thread.begins.back(), ns);
    const std::int64_t self = std::max<std::int64_t>(duration - thread.child.back(), 0);
    const bool outermost = --thread.on_stack[id] == 0;
    thread.names.pop_back();
    thread.begins.pop_back();
    thread.child.pop_back();
    if (!thread.child.empty()) add_saturating(thread.child.back(), duration);
    Function& function = thread.functions[id];
    function.numbers.add(outermost, self, duration);
    if (!thread.names.empty()) {
        const std::uint32_t caller = thread.names.back();
        const bool outermost_pair = --thread.pairs_open[(std::uint64_t{caller} << 32) | id] == 0;
        function.callers[caller].add(outermost_pair, self, duration);
    }
}

bool ProfileStats::empty() const {
    for (const auto& [key, thread] : threads_) {
        if (!thread.functions.empty() && !is_track(key)) return false;
    }
    return true;
}

bool ProfileStats::write(const WriteBytes& write) const {
    // The threads together, by cProfile's key (names that give the same key are one
    // function, as in cProfile).
    struct Entry {
        Numbers numbers;
        std::map<ProfileKey, Numbers> callers;
    };
    std::vector<ProfileKey> keys;
    keys.reserve(names_.size());
    for (std::uint32_t id = 0; id < names_.size(); ++id) keys.push_back(key_of(names_.name(id)));
    std::map<ProfileKey, Entry> entries;
    for (const auto& [key, thread] : threads_) {
        if (is_track(key)) continue;
        for (const auto& [id, function] : thread.functions) {
            Entry& entry = entries[keys[id]];
            entry.numbers.add(function.numbers);
            for (const auto& [caller, numbers] : function.callers) {
                entry.callers[keys[caller]].add(numbers);
            }
        }
    }
    Marshal m;
    m.dict_begin();
    for (const auto& [key, entry] : entries) {
        put_key(m, key);
        m.tuple(5);
        put_numbers(m, entry.numbers);
        m.dict_begin();
        for (const auto& [caller, numbers] : entry.callers) {
            put_key(m, caller);
            m.tuple(4);
            put_numbers(m, numbers, true);
        }
        m.dict_end();
    }
    m.dict_end();
    return write(m.bytes());
}

// ---- Perfetto ---------------------------------------------------------------------------

bool write_perfetto(std::span<const CallSource> sources,
                    std::span<const std::pair<std::string, std::string>> metadata,
                    std::optional<std::int64_t> realtime_offset_ns, const WriteBytes& write) {
    ByteBuffer buffer;
    std::uint32_t next_sequence = 1;
    const std::uint32_t trace_sequence = next_sequence++;
    std::int64_t first = INT64_MAX;
    std::int64_t last = INT64_MIN;
    for (const CallSource& source : sources) {
        for (const CallLog::Thread* thread : source.calls->threads()) {
            if (thread->events.empty()) continue;
            first = std::min(first, sum_saturating(thread->events.front().ns, source.shift_ns));
            last = std::max(last, sum_saturating(thread->events.back().ns, source.shift_ns));
        }
    }
    if (first == INT64_MAX) first = last = 0;
    // Perfetto's times are unsigned, and the readers take them up to kLongestTime: a trace
    // with times before 0 (a JSON trace's own choice) or past it (traces combined) is moved
    // whole to start at 0, its calls' lengths kept; the real time stays what it was. What
    // spans more than kLongestTime cannot be written (the readers refuse such spans, and
    // combine checks its own).
    const std::int64_t lift = first < 0 || last > kLongestTime ? -first : 0;
    append_clock_snapshot(
        trace_sequence, first + lift, first + lift,
        realtime_offset_ns ? std::optional(first + *realtime_offset_ns) : std::nullopt, buffer);
    append_metadata(trace_sequence, metadata, buffer);
    bool ok = true;
    std::map<std::int64_t, std::string> processes;
    for (const CallSource& source : sources) {
        for (const CallLog::Thread* thread : source.calls->threads()) {
            processes.emplace(thread->pid, thread->process_name);
        }
    }
    for (const auto& [pid, name] : processes) {
        append_process_descriptor(trace_sequence, process_track_uuid(pid), pid, name, {}, buffer);
    }
    std::vector<Record> records;
    for (const CallSource& source : sources) {
        const CallLog& calls = *source.calls;
        const auto symbols = [&](SymbolId id) { return SymbolInfo{calls.name(id)}; };
        const auto to_ns = [](std::uint64_t ns) { return static_cast<std::int64_t>(ns); };
        for (const CallLog::Thread* thread : calls.threads()) {
            if (thread->events.empty()) {
                if (!thread->track) {  // a thread that made no call: still one of the trace's
                    const std::uint32_t sequence_id = next_sequence++;
                    append_thread_descriptor(sequence_id,
                                             thread_track_uuid(thread->pid, sequence_id),
                                             process_track_uuid(thread->pid), thread->pid,
                                             thread->tid, thread->thread_name, buffer);
                }
                continue;
            }
            const std::uint32_t sequence_id = next_sequence++;
            PerfettoSequence sequence(sequence_id, thread_track_uuid(thread->pid, sequence_id),
                                      process_track_uuid(thread->pid));
            const auto at = [&](std::int64_t ns) {
                return static_cast<std::uint64_t>(std::max<std::int64_t>(
                    sum_saturating(sum_saturating(ns, source.shift_ns), lift), 0));
            };
            sequence.begin(static_cast<std::int64_t>(at(thread->events.front().ns)), 0, buffer);
            if (!thread->track) {
                append_thread_descriptor(sequence_id, sequence.track_uuid(),
                                         process_track_uuid(thread->pid), thread->pid, thread->tid,
                                         thread->thread_name, buffer);
            }
            records.clear();
            std::vector<std::uint32_t> open;
            for (const CallLog::Event& event : thread->events) {
                if (thread->track) {  // its slices on a track of its own, as recorded
                    if (!CallLog::is_end(event.name)) {
                        open.push_back(event.name);
                        records.push_back(Record{at(event.ns), event.name, EventKind::kTrackEnter});
                        Record name{};  // the raw record after: the track's name
                        std::memcpy(&name, &thread->track_name, sizeof thread->track_name);
                        records.push_back(name);
                    } else if (!open.empty()) {
                        records.push_back(
                            Record{at(event.ns), thread->track_name, EventKind::kTrackExit});
                        open.pop_back();
                    }
                    continue;
                }
                if (!CallLog::is_end(event.name)) {
                    open.push_back(event.name);
                    records.push_back(Record{at(event.ns), event.name, EventKind::kEnter});
                } else if (open.empty()) {
                    continue;
                } else if (event.name == CallLog::kEnd) {
                    records.push_back(Record{at(event.ns), open.back(), EventKind::kExit});
                    open.pop_back();
                } else {  // flagged as the recording flags it
                    sequence.encode(records, to_ns, symbols, buffer);
                    records.clear();
                    sequence.end_unfinished(static_cast<std::int64_t>(at(event.ns)), buffer);
                    open.pop_back();
                }
            }
            sequence.encode(records, to_ns, symbols, buffer);
            if (buffer.size() > (std::size_t{4} << 20)) {
                ok = ok && write(buffer.view());
                buffer.clear();
            }
        }
    }
    return ok && write(buffer.view());
}

}  // namespace vztrace::format
