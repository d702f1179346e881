// Writers of a trace's calls in the formats other tools read: Chrome JSON, speedscope's
// evented profiles, collapsed stacks, pstats (the marshal format of cProfile's dump_stats),
// and Perfetto. Most read a CallLog, the calls read_calls() hands over, kept whole; the
// collapsed stacks and pstats are summed while the trace is read, in memory that grows with
// what the trace's threads call, not with its length. No Python.h.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
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

// Neither the collapsed stacks nor pstats count the slices of tracks of their own (not
// calls). A track may be named after its slices are read, so each thread's sums are kept
// apart until the end, when is_track() tells which to leave out.
class ThreadSums : public CallVisitor {
 public:
    void thread(std::uint64_t, std::int64_t, std::int64_t, std::string_view,
                std::string_view) override {}
    void named_track(std::uint64_t key, std::int64_t, std::int64_t, std::string_view,
                     std::string_view) override {
        tracks_.insert(key);
    }

 protected:
    ~ThreadSums() = default;
    bool is_track(std::uint64_t key) const { return tracks_.contains(key); }

 private:
    std::unordered_set<std::uint64_t> tracks_;
};

// Collapsed stacks for flamegraph.pl and inferno: each stack's self time in nanoseconds.
class FoldedStacks final : public ThreadSums {
 public:
    void begin(std::uint64_t key, std::string_view name, std::int64_t ns) override;
    void end(std::uint64_t key, std::int64_t ns) override;

    bool write(const WriteBytes& write) const;

 private:
    // A thread's stacks are the nodes of a tree (each the stack of its parent and one name
    // more), so a call costs one lookup of its node, whatever its depth, and its end none.
    // A thread's root node is no stack: its `name` is the thread's index in root_keys_.
    static constexpr std::uint32_t kNoParent = std::numeric_limits<std::uint32_t>::max();
    struct Node {
        std::uint32_t parent;
        std::uint32_t name;
        std::int64_t self_ns = 0;
        bool ended = false;  // a call of it ended: the stack is shown
    };
    struct Open {
        std::uint32_t node;
        std::int64_t begin_ns;
        std::int64_t child_ns;  // time of the callees
    };
    struct Thread {
        std::uint32_t root;
        std::vector<Open> open;
    };
    Thread& thread_of(std::uint64_t key);

    NameTable names_;
    std::vector<Node> nodes_;
    std::unordered_map<std::uint64_t, std::uint32_t> child_of_;  // (parent, name) -> node
    std::unordered_map<std::uint64_t, Thread> threads_;
    std::vector<std::uint64_t> root_keys_;
};

// pstats: {(file, line, name): (primitive calls, calls, self s, cumulative s, callers)}
// in Python's marshal format; C functions as ('~', 0, "<built-in method NAME>").
class ProfileStats final : public ThreadSums {
 public:
    void begin(std::uint64_t key, std::string_view name, std::int64_t ns) override;
    void end(std::uint64_t key, std::int64_t ns) override;

    // No call ended in a thread: pstats would refuse the file (an empty profile).
    bool empty() const;
    bool write(const WriteBytes& write) const;

    struct Numbers {
        std::int64_t primitive = 0;  // calls with no call of the same function below them
        std::int64_t calls = 0;
        std::int64_t self_ns = 0;
        std::int64_t cumulative_ns = 0;  // outermost calls only
        void add(bool outermost, std::int64_t self, std::int64_t duration);
        void add(const Numbers& other);
    };

 private:
    struct Function {
        Numbers numbers;
        std::unordered_map<std::uint32_t, Numbers> callers;  // by the caller's name
    };
    struct Thread {
        std::vector<std::uint32_t> names;  // the calls open, outermost first
        std::vector<std::int64_t> begins;
        std::vector<std::int64_t> child;  // time of their callees
        std::unordered_map<std::uint32_t, int> on_stack;
        // A caller's numbers count as primitive the calls of the pair (caller, callee)
        // that is not already open below them, as cProfile does: fib <- fib is 14/2 in
        // fib(5).
        std::unordered_map<std::uint64_t, int> pairs_open;
        std::unordered_map<std::uint32_t, Function> functions;  // by name
    };

    NameTable names_;
    std::unordered_map<std::uint64_t, Thread> threads_;
};

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
