// Writers of a trace's calls in the formats other tools read: Chrome JSON, speedscope's
// evented profiles, collapsed stacks, pstats (the marshal format of cProfile's dump_stats),
// and Perfetto. They read a CallLog, the calls read_calls() hands over, kept whole. No
// Python.h.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tracer/format/call_reader.hpp"
#include "tracer/format/name_table.hpp"

namespace vztrace::format {

// Every call of a trace, kept in each thread's order.
// Every call of the trace, kept in each thread's order.
class CallLog final : public CallVisitor {
 public:
    struct Event {
        std::int64_t ns;
        std::uint32_t name;  // kEnd (or kEndUnfinished) for an end
    };
    static constexpr std::uint32_t kEnd = 0xFFFFFFFFU;
    static constexpr std::uint32_t kEndUnfinished = 0xFFFFFFFEU;  // a call flagged unfinished
    static bool is_end(std::uint32_t name) { return name >= kEndUnfinished; }
    struct Thread {
        std::int64_t pid = 0;
        std::int64_t tid = 0;
        std::string process_name;
        std::string thread_name;
        std::vector<Event> events;
        // A track of its own (an asyncio task's, --log-async): its slices are the task's
        // steps, not calls; `track_name` is thread_name's id among the names.
        bool track = false;
        std::uint32_t track_name = 0;
    };

    void thread(std::uint64_t key, std::int64_t pid, std::int64_t tid,
                std::string_view process_name, std::string_view thread_name) override {
        Thread& t = threads_[key];
        t.pid = pid;
        t.tid = tid;
        t.process_name = process_name;
        t.thread_name = thread_name;
    }
    void named_track(std::uint64_t key, std::int64_t pid, std::int64_t tid,
                     std::string_view process_name, std::string_view track_name) override {
        thread(key, pid, tid, process_name, track_name);
        Thread& t = threads_[key];
        t.track = true;
        t.track_name = names_.id(track_name);
    }
    void begin(std::uint64_t key, std::string_view name, std::int64_t ns) override {
        threads_[key].events.push_back(Event{ns, names_.id(name)});
    }
    void end(std::uint64_t key, std::int64_t ns) override {
        threads_[key].events.push_back(Event{ns, kEnd});
    }
    void end_unfinished(std::uint64_t key, std::int64_t ns) override {
        threads_[key].events.push_back(Event{ns, kEndUnfinished});
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
    NameTable names_;
    std::unordered_map<std::uint64_t, Thread> threads_;
};

// Where the bytes go; false when they could not be written.
using WriteBytes = std::function<bool(std::string_view)>;

// Chrome JSON: complete events and names; for chrome://tracing, Perfetto and vizviewer.
// `metadata` goes in vztrace's metadata object (where vztrace's own JSON keeps its
// recording's): with it, a track of its own is read back as one, not as a thread.
bool write_json(const CallLog& calls, std::span<const std::pair<std::string, std::string>> metadata,
                const WriteBytes& write);
// speedscope's file format, one evented profile a thread; `title` names the file.
bool write_speedscope(const CallLog& calls, const std::string& title, const WriteBytes& write);
// Collapsed stacks for flamegraph.pl and inferno: each stack's self time in nanoseconds.
// Neither they nor pstats count the slices of tracks of their own (not calls).
bool write_folded(const CallLog& calls, const WriteBytes& write);
// pstats: {(file, line, name): (primitive calls, calls, self s, cumulative s, callers)}
// in Python's marshal format; C functions as ('~', 0, "<built-in method NAME>").
bool write_pstats(const CallLog& calls, const WriteBytes& write);

// One input of a Perfetto trace being written: its calls, and how far to move their times.
struct CallSource {
    const CallLog* calls;
    std::int64_t shift_ns = 0;
};

// The sources as one Perfetto trace, a packet sequence a thread, as vztrace's writer
// writes them; each thread keeps its pid, tid and names; `metadata` goes in too.
// `realtime_offset_ns`: CLOCK_REALTIME less CLOCK_MONOTONIC on the sources' time axis, where
// it is known (the trace then records it, as vztrace's own do); absent, none is recorded.
bool write_perfetto(std::span<const CallSource> sources,
                    std::span<const std::pair<std::string, std::string>> metadata,
                    std::optional<std::int64_t> realtime_offset_ns, const WriteBytes& write);

}  // namespace vztrace::format
