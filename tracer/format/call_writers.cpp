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

namespace vztrace::format {
namespace {

std::string json_text(std::string_view text) {
    std::string out;
    append_json_string(out, text);
    return out;
}

// Walks a thread's calls: `on_end(name, begin_ns, end_ns, stack, unfinished)` at each end,
// with the names of the calls still open around it (outermost first).
template <typename OnEnd>
void walk(const CallLog::Thread& thread, OnEnd&& on_end) {
    std::vector<std::pair<std::uint32_t, std::int64_t>> open;
    std::vector<std::uint32_t> stack;
    for (const CallLog::Event& event : thread.events) {
        if (!CallLog::is_end(event.name)) {
            open.emplace_back(event.name, event.ns);
            stack.push_back(event.name);
            continue;
        }
        if (open.empty()) continue;
        const auto [name, begin] = open.back();
        open.pop_back();
        stack.pop_back();
        on_end(name, begin, std::max(event.ns, begin), stack,
               event.name == CallLog::kEndUnfinished);
    }
}

// ---- Chrome JSON ----------------------------------------------------------------------

}  // namespace

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
    }
    for (const auto& [pid, name] : processes) {
        add(fmt::format(R"({{"ph": "M", "pid": {}, "tid": {}, "name": "process_name", )"
                        R"("args": {{"name": {}}}}})",
                        pid, pid, json_text(name)));
    }
    bool ok = write(text);
    text.clear();
    for (const CallLog::Thread* thread : calls.threads()) {
        walk(*thread, [&](std::uint32_t name, std::int64_t begin, std::int64_t end,
                          const std::vector<std::uint32_t>&, bool unfinished) {
            add(fmt::format(R"({{"ph": "X", "pid": {}, "tid": {}, "ts": {}, "dur": {}, )"
                            R"("name": {}{}}})",
                            thread->pid, thread->tid, micros_text(begin), micros_text(end - begin),
                            json_text(calls.name(name)),
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

namespace {

// ---- speedscope (evented profiles, one a thread) ----------------------------------------

}  // namespace

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
        const std::int64_t start = origin;
        std::int64_t last = thread->events.front().ns;
        std::string events;
        std::vector<std::uint32_t> open;
        for (const CallLog::Event& event : thread->events) {
            // speedscope wants times that never go back.
            last = std::max(last, event.ns);
            if (!CallLog::is_end(event.name)) {
                open.push_back(event.name);
                events += fmt::format("{}{{\"type\": \"O\", \"frame\": {}, \"at\": {}}}",
                                      events.empty() ? "" : ", ", event.name, last - start);
            } else if (!open.empty()) {
                events += fmt::format("{}{{\"type\": \"C\", \"frame\": {}, \"at\": {}}}",
                                      events.empty() ? "" : ", ", open.back(), last - start);
                open.pop_back();
            }
        }
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
            first_profile ? "" : ", ", json_text(name), thread->events.front().ns - start,
            last - start);
        first_profile = false;
        ok = ok && write(text) && write(events);
        text = "]}";
    }
    text += "]}\n";
    return ok && write(text);
}

namespace {

// ---- collapsed stacks -------------------------------------------------------------------

}  // namespace

bool write_folded(const CallLog& calls, const WriteBytes& write) {
    // Self time of each stack, in nanoseconds (no call is too short to show), the threads
    // together. The stacks are the nodes of a tree (each the stack of its parent and one
    // name more), so a call's end costs one lookup whatever its depth, not a path of all
    // the names above it.
    struct Node {
        std::uint32_t parent;  // kRoot for the outermost calls
        std::uint32_t name;
        std::int64_t self_ns = 0;
        bool ended = false;  // a call of it ended: the stack is shown
    };
    constexpr std::uint32_t kRoot = std::numeric_limits<std::uint32_t>::max();
    std::vector<Node> nodes;
    std::unordered_map<std::uint64_t, std::uint32_t> child_of;  // (parent, name) -> node
    const auto node_for = [&](std::uint32_t parent, std::uint32_t name) {
        const std::uint64_t key = (std::uint64_t{parent} << 32) | name;
        const auto [at, added] =
            child_of.try_emplace(key, static_cast<std::uint32_t>(nodes.size()));
        if (added) nodes.push_back({parent, name});
        return at->second;
    };
    for (const CallLog::Thread* thread : calls.threads()) {
        if (thread->track) continue;
        struct Open {
            std::uint32_t node;
            std::int64_t begin_ns;
            std::int64_t child_ns;  // time of the callees
        };
        std::vector<Open> open;
        for (const CallLog::Event& event : thread->events) {
            if (!CallLog::is_end(event.name)) {
                open.push_back(
                    {node_for(open.empty() ? kRoot : open.back().node, event.name), event.ns, 0});
                continue;
            }
            if (open.empty()) continue;
            const Open call = open.back();
            open.pop_back();
            const std::int64_t duration = std::max<std::int64_t>(event.ns - call.begin_ns, 0);
            nodes[call.node].self_ns += std::max<std::int64_t>(duration - call.child_ns, 0);
            nodes[call.node].ended = true;
            if (!open.empty()) open.back().child_ns += duration;
        }
    }
    // ';' separates frames, a line ends a stack: neither may be in a name, nor another
    // control character (a '\r' ends a line for some readers, a NUL the text for others).
    // The readers take the count after the last space, so spaces may.
    std::vector<std::string> names(calls.name_count());
    for (std::uint32_t id = 0; id < calls.name_count(); ++id) {
        for (const char c : calls.name(id)) {
            const auto byte = static_cast<unsigned char>(c);
            names[id] += c == ';' ? ':' : byte < 0x20 || byte == 0x7F ? ' ' : c;
        }
    }
    // Every stack once, in the order of its text (names that read the same after the
    // changes above are one stack, as they were).
    std::map<std::string, std::int64_t> stacks;
    std::vector<std::uint32_t> chain;
    for (std::uint32_t id = 0; id < nodes.size(); ++id) {
        if (!nodes[id].ended) continue;
        chain.clear();
        for (std::uint32_t at = id; at != kRoot; at = nodes[at].parent) chain.push_back(at);
        std::string path;
        for (auto at = chain.rbegin(); at != chain.rend(); ++at) {
            if (!path.empty()) path += ';';
            path += names[nodes[*at].name];
        }
        stacks[path] += nodes[id].self_ns;
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
// the first " (" whose rest is a place vztrace writes, an absolute path or CPython's
// "<string>" and the like. The key's name is the code's name, the qualname's last part
// (after its last '.' outside parentheses), as cProfile's.
ProfileKey key_of(const std::string& name) {
    for (auto open = name.find(" ("); open != std::string::npos && name.back() == ')';
         open = name.find(" (", open + 1)) {
        const std::string place = name.substr(open + 2, name.size() - open - 3);
        const auto colon = place.rfind(':');
        if (colon == std::string::npos || colon + 1 >= place.size()) continue;
        if (place[0] != '/' && place[0] != '<') continue;
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

struct ProfileNumbers {
    std::int64_t primitive = 0;  // calls with no call of the same function below them
    std::int64_t calls = 0;
    std::int64_t self_ns = 0;
    std::int64_t cumulative_ns = 0;  // outermost calls only
    void add(bool outermost, std::int64_t self, std::int64_t duration) {
        ++calls;
        if (outermost) {
            ++primitive;
            cumulative_ns += duration;
        }
        self_ns += self;
    }
};

void put_key(Marshal& m, const ProfileKey& key) {
    m.tuple(3);
    m.text(key.file);
    m.integer(key.line);
    m.text(key.name);
}

// A function's numbers: (primitive calls, calls, own time, cumulative time), as cProfile
// writes them; a caller's have the calls first: (calls, primitive calls, ...).
void put_numbers(Marshal& m, const ProfileNumbers& n, bool of_caller = false) {
    m.integer(of_caller ? n.calls : n.primitive);
    m.integer(of_caller ? n.primitive : n.calls);
    m.real(static_cast<double>(n.self_ns) / 1e9);
    m.real(static_cast<double>(n.cumulative_ns) / 1e9);
}

}  // namespace

bool write_pstats(const CallLog& calls, const WriteBytes& write) {
    struct Entry {
        ProfileNumbers numbers;
        std::map<ProfileKey, ProfileNumbers> callers;
    };
    std::vector<ProfileKey> keys;
    keys.reserve(calls.name_count());
    for (std::uint32_t id = 0; id < calls.name_count(); ++id)
        keys.push_back(key_of(calls.name(id)));
    std::map<ProfileKey, Entry> entries;
    for (const CallLog::Thread* thread : calls.threads()) {
        if (thread->track) continue;
        std::vector<std::int64_t> child;
        std::vector<std::int64_t> begins;
        std::vector<std::uint32_t> names;
        std::unordered_map<std::uint32_t, int> on_stack;
        // A caller's numbers count as primitive the calls of the pair (caller, callee) that
        // is not already open below them, as cProfile does: fib <- fib is 14/2 in fib(5).
        std::unordered_map<std::uint64_t, int> pairs_open;
        const auto pair = [](std::uint32_t caller, std::uint32_t callee) {
            return (std::uint64_t{caller} << 32) | callee;
        };
        for (const CallLog::Event& event : thread->events) {
            if (!CallLog::is_end(event.name)) {
                if (!names.empty()) ++pairs_open[pair(names.back(), event.name)];
                names.push_back(event.name);
                begins.push_back(event.ns);
                child.push_back(0);
                ++on_stack[event.name];
                continue;
            }
            if (names.empty()) continue;
            const std::uint32_t name = names.back();
            const std::int64_t duration = std::max<std::int64_t>(event.ns - begins.back(), 0);
            const std::int64_t self = std::max<std::int64_t>(duration - child.back(), 0);
            const bool outermost = --on_stack[name] == 0;
            names.pop_back();
            begins.pop_back();
            child.pop_back();
            if (!child.empty()) child.back() += duration;
            Entry& entry = entries[keys[name]];
            entry.numbers.add(outermost, self, duration);
            if (!names.empty()) {
                const bool outermost_pair = --pairs_open[pair(names.back(), name)] == 0;
                entry.callers[keys[names.back()]].add(outermost_pair, self, duration);
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

namespace {

// ---- Perfetto ---------------------------------------------------------------------------

// Writes the sources as one Perfetto trace, a packet sequence a thread, as vztrace's writer
// does; each thread keeps its pid, tid and names. `metadata` goes in too.
}  // namespace

bool write_perfetto(std::span<const CallSource> sources,
                    std::span<const std::pair<std::string, std::string>> metadata,
                    std::optional<std::int64_t> realtime_offset_ns, const WriteBytes& write) {
    ByteBuffer buffer;
    std::uint32_t next_sequence = 1;
    const std::uint32_t trace_sequence = next_sequence++;
    std::int64_t first = INT64_MAX;
    for (const CallSource& source : sources) {
        for (const CallLog::Thread* thread : source.calls->threads()) {
            if (!thread->events.empty())
                first = std::min(first, thread->events.front().ns + source.shift_ns);
        }
    }
    if (first == INT64_MAX) first = 0;
    // Perfetto's times are unsigned: a trace with times before 0 (a JSON trace's own
    // choice) is lifted whole, its calls' lengths kept; the real time stays what it was.
    const std::int64_t lift = first < 0 ? -first : 0;
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
            if (thread->events.empty()) continue;
            const std::uint32_t sequence_id = next_sequence++;
            PerfettoSequence sequence(sequence_id, thread_track_uuid(thread->pid, sequence_id),
                                      process_track_uuid(thread->pid));
            const auto at = [&](std::int64_t ns) {
                return static_cast<std::uint64_t>(
                    std::max<std::int64_t>(ns + source.shift_ns + lift, 0));
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

namespace {}  // namespace

}  // namespace vztrace::format
