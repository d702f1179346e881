#include "launcher/export.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <unordered_map>
#include <vector>

#include "launcher/subcommand.hpp"
#include "tracer/format/chrome_json.hpp"
#include "tracer/format/name_table.hpp"
#include "tracer/format/perfetto_encoder.hpp"
#include "tracer/output_file.hpp"

namespace vztrace::launcher {
namespace {

constexpr std::string_view kFormats =
    ".pftrace, .perfetto-trace, .json, .json.gz, .speedscope.json, .folded, .pstats";

bool ends_with(std::string_view text, std::string_view suffix) {
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// Every call of the trace, kept in each thread's order.
class Calls final : public format::CallVisitor {
 public:
    struct Event {
        std::int64_t ns;
        std::uint32_t name;  // kEnd for an end
    };
    static constexpr std::uint32_t kEnd = 0xFFFFFFFFU;
    struct Thread {
        std::int64_t pid = 0;
        std::int64_t tid = 0;
        std::string process_name;
        std::string thread_name;
        std::vector<Event> events;
    };

    void thread(std::uint64_t key, std::int64_t pid, std::int64_t tid,
                std::string_view process_name, std::string_view thread_name) override {
        Thread& t = threads_[key];
        t.pid = pid;
        t.tid = tid;
        t.process_name = process_name;
        t.thread_name = thread_name;
    }
    void begin(std::uint64_t key, std::string_view name, std::int64_t ns) override {
        threads_[key].events.push_back(Event{ns, names_.id(name)});
    }
    void end(std::uint64_t key, std::int64_t ns) override {
        threads_[key].events.push_back(Event{ns, kEnd});
    }

    // Threads in pid, tid order.
    std::vector<const Thread*> threads() const {
        std::vector<const Thread*> result;
        for (const auto& [key, thread] : threads_) result.push_back(&thread);
        std::sort(result.begin(), result.end(), [](const Thread* a, const Thread* b) {
            return std::tie(a->pid, a->tid) < std::tie(b->pid, b->tid);
        });
        return result;
    }
    const std::string& name(std::uint32_t id) const { return names_.name(id); }
    std::size_t name_count() const { return names_.size(); }

 private:
    format::NameTable names_;
    std::unordered_map<std::uint64_t, Thread> threads_;
};

// Walks a thread's calls: `on_end(name, begin_ns, end_ns, stack)` at each end, with the
// names of the calls still open around it (outermost first).
template <typename OnEnd>
void walk(const Calls::Thread& thread, OnEnd&& on_end) {
    std::vector<std::pair<std::uint32_t, std::int64_t>> open;
    std::vector<std::uint32_t> stack;
    for (const Calls::Event& event : thread.events) {
        if (event.name != Calls::kEnd) {
            open.emplace_back(event.name, event.ns);
            stack.push_back(event.name);
            continue;
        }
        if (open.empty()) continue;
        const auto [name, begin] = open.back();
        open.pop_back();
        stack.pop_back();
        on_end(name, begin, std::max(event.ns, begin), stack);
    }
}

std::string micros(std::int64_t ns) {
    return fmt::format("{}.{:03}", ns / 1000, static_cast<int>(std::llabs(ns % 1000)));
}

// ---- Chrome JSON ----------------------------------------------------------------------

bool write_json(const Calls& calls, tracer::OutputFile& out) {
    std::string text = "{\"traceEvents\": [\n";
    bool first = true;
    const auto add = [&](const std::string& event) {
        text += first ? " " : ",\n ";
        text += event;
        first = false;
    };
    std::map<std::int64_t, std::string> processes;
    for (const Calls::Thread* thread : calls.threads()) {
        processes.emplace(thread->pid, thread->process_name);
        add(fmt::format(R"({{"ph": "M", "pid": {}, "tid": {}, "name": "thread_name", )"
                        R"("args": {{"name": {}}}}})",
                        thread->pid, thread->tid, json_string(thread->thread_name)));
    }
    for (const auto& [pid, name] : processes) {
        add(fmt::format(R"({{"ph": "M", "pid": {}, "tid": {}, "name": "process_name", )"
                        R"("args": {{"name": {}}}}})",
                        pid, pid, json_string(name)));
    }
    bool ok = out.write(text);
    text.clear();
    for (const Calls::Thread* thread : calls.threads()) {
        walk(*thread, [&](std::uint32_t name, std::int64_t begin, std::int64_t end,
                          const std::vector<std::uint32_t>&) {
            add(fmt::format(R"({{"ph": "X", "pid": {}, "tid": {}, "ts": {}, "dur": {}, )"
                            R"("name": {}}})",
                            thread->pid, thread->tid, micros(begin), micros(end - begin),
                            json_string(calls.name(name))));
            if (text.size() > (std::size_t{1} << 20)) {
                ok = ok && out.write(text);
                text.clear();
            }
        });
    }
    text += "\n], \"displayTimeUnit\": \"ns\"}\n";
    return ok && out.write(text);
}

// ---- speedscope (evented profiles, one a thread) ----------------------------------------

bool write_speedscope(const Calls& calls, const std::string& title, tracer::OutputFile& out) {
    std::string text =
        "{\"$schema\": \"https://www.speedscope.app/file-format-schema.json\", "
        "\"exporter\": \"vztrace\", \"name\": " +
        json_string(title) + ", \"activeProfileIndex\": 0, \"shared\": {\"frames\": [";
    for (std::uint32_t id = 0; id < calls.name_count(); ++id) {
        text += fmt::format("{}{{\"name\": {}}}", id == 0 ? "" : ", ", json_string(calls.name(id)));
    }
    text += "]}, \"profiles\": [";
    bool ok = true;
    bool first_profile = true;
    for (const Calls::Thread* thread : calls.threads()) {
        if (thread->events.empty()) continue;
        const std::int64_t start = thread->events.front().ns;
        std::int64_t last = start;
        std::string events;
        std::vector<std::uint32_t> open;
        for (const Calls::Event& event : thread->events) {
            // speedscope wants times that never go back.
            last = std::max(last, event.ns);
            if (event.name != Calls::kEnd) {
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
            "{}, thread {}", process,
            thread->thread_name.empty() ? std::to_string(thread->tid) : thread->thread_name);
        text += fmt::format(
            "{}{{\"type\": \"evented\", \"name\": {}, \"unit\": \"nanoseconds\", "
            "\"startValue\": 0, \"endValue\": {}, \"events\": [",
            first_profile ? "" : ", ", json_string(name), last - start);
        first_profile = false;
        ok = ok && out.write(text) && out.write(events);
        text = "]}";
    }
    text += "]}\n";
    return ok && out.write(text);
}

// ---- collapsed stacks -------------------------------------------------------------------

bool write_folded(const Calls& calls, tracer::OutputFile& out) {
    // Self time of each stack, in nanoseconds (no call is too short to show), the threads
    // together.
    std::map<std::string, std::int64_t> stacks;
    for (const Calls::Thread* thread : calls.threads()) {
        std::vector<std::int64_t> child;  // time of the callees, per open call
        std::vector<std::int64_t> begins;
        std::vector<std::uint32_t> names;
        for (const Calls::Event& event : thread->events) {
            if (event.name != Calls::kEnd) {
                names.push_back(event.name);
                begins.push_back(event.ns);
                child.push_back(0);
                continue;
            }
            if (names.empty()) continue;
            const std::int64_t duration = std::max<std::int64_t>(event.ns - begins.back(), 0);
            std::string path;
            for (const std::uint32_t name : names) {
                if (!path.empty()) path += ';';
                // ';' separates frames, a line ends a stack: neither may be in a name (the
                // readers take the count after the last space, so spaces may).
                for (const char c : calls.name(name)) path += c == ';' ? ':' : c == '\n' ? ' ' : c;
            }
            stacks[path] += std::max<std::int64_t>(duration - child.back(), 0);
            names.pop_back();
            begins.pop_back();
            child.pop_back();
            if (!child.empty()) child.back() += duration;
        }
    }
    std::string text;
    for (const auto& [path, ns] : stacks) text += fmt::format("{} {}\n", path, ns);
    return out.write(text);
}

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

ProfileKey key_of(const std::string& name) {
    const auto open = name.rfind(" (");
    if (open != std::string::npos && name.back() == ')') {
        const std::string place = name.substr(open + 2, name.size() - open - 3);
        const auto colon = place.rfind(':');
        if (colon != std::string::npos) {
            char* end = nullptr;
            const long line = std::strtol(place.c_str() + colon + 1, &end, 10);
            if (end != nullptr && *end == '\0') {
                return ProfileKey{place.substr(0, colon), line, name.substr(0, open)};
            }
        }
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

void put_numbers(Marshal& m, const ProfileNumbers& n) {
    m.integer(n.primitive);
    m.integer(n.calls);
    m.real(static_cast<double>(n.self_ns) / 1e9);
    m.real(static_cast<double>(n.cumulative_ns) / 1e9);
}

bool write_pstats(const Calls& calls, tracer::OutputFile& out) {
    struct Entry {
        ProfileNumbers numbers;
        std::map<ProfileKey, ProfileNumbers> callers;
    };
    std::vector<ProfileKey> keys;
    keys.reserve(calls.name_count());
    for (std::uint32_t id = 0; id < calls.name_count(); ++id)
        keys.push_back(key_of(calls.name(id)));
    std::map<ProfileKey, Entry> entries;
    for (const Calls::Thread* thread : calls.threads()) {
        std::vector<std::int64_t> child;
        std::vector<std::int64_t> begins;
        std::vector<std::uint32_t> names;
        std::unordered_map<std::uint32_t, int> on_stack;
        for (const Calls::Event& event : thread->events) {
            if (event.name != Calls::kEnd) {
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
            if (!names.empty()) entry.callers[keys[names.back()]].add(outermost, self, duration);
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
            put_numbers(m, numbers);
        }
        m.dict_end();
    }
    m.dict_end();
    return out.write(m.bytes());
}

// ---- Perfetto ---------------------------------------------------------------------------

// One input of a Perfetto trace being written: its calls, and how far to move their times.
struct Source {
    const Calls* calls;
    std::int64_t shift_ns = 0;
};

// Writes the sources as one Perfetto trace, a packet sequence a thread, as vztrace's writer
// does; each thread keeps its pid, tid and names. `metadata` goes in too.
bool write_perfetto(std::span<const Source> sources,
                    std::span<const std::pair<std::string, std::string>> metadata,
                    tracer::OutputFile& out) {
    format::ByteBuffer buffer;
    std::uint32_t next_sequence = 1;
    const std::uint32_t trace_sequence = next_sequence++;
    std::int64_t first = INT64_MAX;
    for (const Source& source : sources) {
        for (const Calls::Thread* thread : source.calls->threads()) {
            if (!thread->events.empty())
                first = std::min(first, thread->events.front().ns + source.shift_ns);
        }
    }
    if (first == INT64_MAX) first = 0;
    format::append_clock_snapshot(trace_sequence, first, first, first, buffer);
    format::append_metadata(trace_sequence, metadata, buffer);
    bool ok = true;
    std::map<std::int64_t, std::string> processes;
    for (const Source& source : sources) {
        for (const Calls::Thread* thread : source.calls->threads()) {
            processes.emplace(thread->pid, thread->process_name);
        }
    }
    for (const auto& [pid, name] : processes) {
        format::append_process_descriptor(trace_sequence, format::process_track_uuid(pid), pid,
                                          name, {}, buffer);
    }
    std::vector<format::Record> records;
    for (const Source& source : sources) {
        const Calls& calls = *source.calls;
        const auto symbols = [&](format::SymbolId id) {
            return format::SymbolInfo{calls.name(id)};
        };
        const auto to_ns = [](std::uint64_t ns) { return static_cast<std::int64_t>(ns); };
        for (const Calls::Thread* thread : calls.threads()) {
            if (thread->events.empty()) continue;
            const std::uint32_t sequence_id = next_sequence++;
            format::PerfettoSequence sequence(sequence_id,
                                              format::thread_track_uuid(thread->pid, sequence_id));
            const auto at = [&](std::int64_t ns) {
                return static_cast<std::uint64_t>(std::max<std::int64_t>(ns + source.shift_ns, 0));
            };
            sequence.begin(static_cast<std::int64_t>(at(thread->events.front().ns)), 0, buffer);
            format::append_thread_descriptor(sequence_id, sequence.track_uuid(),
                                             format::process_track_uuid(thread->pid), thread->pid,
                                             thread->tid, thread->thread_name, buffer);
            records.clear();
            std::vector<std::uint32_t> open;
            for (const Calls::Event& event : thread->events) {
                if (event.name != Calls::kEnd) {
                    open.push_back(event.name);
                    records.push_back(
                        format::Record{at(event.ns), event.name, format::EventKind::kEnter});
                } else if (!open.empty()) {
                    records.push_back(
                        format::Record{at(event.ns), open.back(), format::EventKind::kExit});
                    open.pop_back();
                }
            }
            sequence.encode(records, to_ns, symbols, buffer);
            if (buffer.size() > (std::size_t{4} << 20)) {
                ok = ok && out.write(buffer.view());
                buffer.clear();
            }
        }
    }
    return ok && out.write(buffer.view());
}

}  // namespace

int run_export(std::span<const std::string> args) {
    std::string trace, output;
    CLI::App app{"vztrace export: a trace in another format", "vztrace export"};
    app.set_help_flag("-h,--help", "Print this help and exit");
    app.add_option("trace", trace,
                   "The trace: vztrace's .pftrace, .json or .json.gz, or VizTracer's JSON")
        ->required()
        ->type_name("TRACE");
    app.add_option("-o,--output", output,
                   fmt::format("The file to write; its extension names the format: {}. An "
                               "existing file is replaced once the new one is complete",
                               kFormats))
        ->required()
        ->type_name("OUT");
    app.footer(
        "Formats: Chrome JSON (chrome://tracing, Perfetto, vizviewer), gzipped; speedscope's "
        "evented profiles (one a thread); collapsed stacks for flamegraph.pl and inferno (self "
        "time in nanoseconds); pstats, the marshal format of cProfile's dump_stats "
        "(pstats.Stats, snakeviz).\nExit status: 0, 2 bad command line, 65 not a trace or "
        "damaged, 66 cannot be read, 74 the output cannot be written.");
    if (const int status = parse_subcommand(app, "export", args); status >= 0) return status;
    enum class Kind { kPerfetto, kJson, kSpeedscope, kFolded, kPstats };
    Kind kind;
    if (ends_with(output, ".pftrace") || ends_with(output, ".perfetto-trace")) {
        kind = Kind::kPerfetto;
    } else if (ends_with(output, ".speedscope.json")) {
        kind = Kind::kSpeedscope;
    } else if (ends_with(output, ".json") || ends_with(output, ".json.gz")) {
        kind = Kind::kJson;
    } else if (ends_with(output, ".folded")) {
        kind = Kind::kFolded;
    } else if (ends_with(output, ".pstats") || ends_with(output, ".prof")) {
        kind = Kind::kPstats;
    } else {
        return fail(ExitCode::kUsage,
                    fmt::format("export: cannot tell the format of '{}': name it with one of {}",
                                output, kFormats));
    }
    Calls calls;
    format::CallReadResult read;
    if (const int error = read_trace(trace, calls, read); error != 0) return error;
    tracer::OutputFile out(output);
    if (!out.ok()) return fail(ExitCode::kTraceNotWritten, out.error());
    bool ok = false;
    switch (kind) {
        case Kind::kPerfetto: {
            const Source source{&calls, 0};
            const std::pair<std::string, std::string> from[] = {{"vztrace.exported_from", trace}};
            ok = write_perfetto(std::span(&source, 1), from, out);
            break;
        }
        case Kind::kJson:
            ok = write_json(calls, out);
            break;
        case Kind::kSpeedscope:
            ok = write_speedscope(calls, trace, out);
            break;
        case Kind::kFolded:
            ok = write_folded(calls, out);
            break;
        case Kind::kPstats:
            ok = write_pstats(calls, out);
            break;
    }
    if (!ok || !out.commit()) {
        out.discard();
        return fail(ExitCode::kTraceNotWritten, out.error());
    }
    return 0;
}

}  // namespace vztrace::launcher

namespace vztrace::launcher {

int run_combine(std::span<const std::string> args) {
    std::vector<std::string> traces;
    std::string output, align = "realtime";
    CLI::App app{"vztrace combine: traces of separate runs or machines as one", "vztrace combine"};
    app.set_help_flag("-h,--help", "Print this help and exit");
    app.add_option("traces", traces,
                   "The traces (vztrace's .pftrace, .json, .json.gz, VizTracer's JSON)")
        ->required()
        ->expected(2, -1)
        ->type_name("TRACE");
    app.add_option("-o,--output", output,
                   "The trace to write (.pftrace or .perfetto-trace); replaced once complete")
        ->required()
        ->type_name("OUT");
    app.add_option("--align", align,
                   "realtime: the clocks of the machines, as each trace recorded CLOCK_REALTIME "
                   "beside its own (vztrace's Perfetto traces do); start: each trace's first "
                   "call at the first trace's")
        ->check(CLI::IsMember({"realtime", "start"}))
        ->capture_default_str();
    app.footer(
        "Each process keeps its pid and names. Exit status: 0, 2 bad command line, 65 not a "
        "trace or damaged, 66 cannot be read, 74 the output cannot be written.");
    if (const int status = parse_subcommand(app, "combine", args); status >= 0) return status;
    if (!ends_with(output, ".pftrace") && !ends_with(output, ".perfetto-trace")) {
        return fail(ExitCode::kUsage,
                    fmt::format("combine: '{}': combine writes Perfetto (.pftrace, "
                                ".perfetto-trace); `vztrace export` converts it",
                                output));
    }
    std::deque<Calls> inputs;
    std::vector<format::CallReadResult> reads;
    for (const std::string& trace : traces) {
        format::CallReadResult read;
        if (const int error = read_trace(trace, inputs.emplace_back(), read); error != 0)
            return error;
        if (align == "realtime" && !read.realtime_offset_ns) {
            return fail(ExitCode::kUsage,
                        fmt::format("combine: {} records no CLOCK_REALTIME to line it up with "
                                    "the others by; use --align start",
                                    trace));
        }
        reads.push_back(read);
    }
    const auto first_of = [](const Calls& calls) {
        std::int64_t first = INT64_MAX;
        for (const Calls::Thread* thread : calls.threads()) {
            if (!thread->events.empty()) first = std::min(first, thread->events.front().ns);
        }
        return first == INT64_MAX ? 0 : first;
    };
    std::vector<Source> sources;
    std::map<std::int64_t, std::size_t> pid_owner;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        // Onto the first trace's time axis.
        const std::int64_t shift = align == "realtime"
                                       ? *reads[i].realtime_offset_ns - *reads[0].realtime_offset_ns
                                       : first_of(inputs[0]) - first_of(inputs[i]);
        sources.push_back(Source{&inputs[i], shift});
        for (const Calls::Thread* thread : inputs[i].threads()) {
            const auto [owner, added] = pid_owner.emplace(thread->pid, i);
            if (!added && owner->second != i) {
                std::fprintf(stderr,
                             "vztrace: warning: pid %lld is in both %s and %s: Perfetto shows "
                             "them as one process\n",
                             static_cast<long long>(thread->pid), traces[owner->second].c_str(),
                             traces[i].c_str());
                owner->second = i;  // warned once per pair
            }
        }
    }
    std::vector<std::pair<std::string, std::string>> metadata;
    for (const std::string& trace : traces) metadata.emplace_back("vztrace.combined_from", trace);
    metadata.emplace_back("vztrace.combined_align", align);
    tracer::OutputFile out(output);
    if (!out.ok()) return fail(ExitCode::kTraceNotWritten, out.error());
    if (!write_perfetto(sources, metadata, out) || !out.commit()) {
        out.discard();
        return fail(ExitCode::kTraceNotWritten, out.error());
    }
    return 0;
}

}  // namespace vztrace::launcher
