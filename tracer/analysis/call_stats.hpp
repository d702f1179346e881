// CallStats: per function, how many calls and how much time, from a trace's calls
// (call_reader.hpp) as they stream by: memory is the open calls and one entry per
// function and thread, whatever the trace's length. No Python.h.
//
// Self time is a call's own, its callees' left out. Total time includes the callees, and
// counts each call once even under recursion: only the outermost call of a function that
// is already on the stack adds to it (f -> f -> f for 10 ms is 10 ms of f, not 30).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tracer/format/call_reader.hpp"
#include "tracer/format/name_table.hpp"

namespace vztrace::analysis {

using format::CallVisitor;
using format::NameTable;

enum class GroupBy { kAll, kProcess, kThread };

struct FunctionStats {
    std::string name;
    std::uint64_t calls = 0;
    std::int64_t self_ns = 0;
    std::int64_t total_ns = 0;      // once per call under recursion
    std::int64_t inclusive_ns = 0;  // every call's own duration (for the mean)
    std::int64_t max_ns = 0;        // the longest call
    std::int64_t mean_ns() const {
        return calls == 0 ? 0 : inclusive_ns / static_cast<std::int64_t>(calls);
    }
};

struct StatsGroup {
    std::int64_t pid = 0;  // kProcess, kThread
    std::int64_t tid = 0;  // kThread
    std::string process_name;
    std::string thread_name;
    std::int64_t self_ns = 0;  // all its functions' self time: the time it was in a call
    std::vector<FunctionStats> functions;
    bool named_track = false;  // kThread: a named track's (an asyncio task's), its slices
};

class CallStats final : public CallVisitor {
 public:
    // A named track's slices (an asyncio task's steps) are not calls: they are counted
    // apart (track_count, track_slices), and only --by thread shows them, a group each.
    void named_track(std::uint64_t track, std::int64_t pid, std::int64_t tid,
                     std::string_view process_name, std::string_view track_name) override;
    void thread(std::uint64_t thread, std::int64_t pid, std::int64_t tid,
                std::string_view process_name, std::string_view thread_name) override;
    void begin(std::uint64_t thread, std::string_view name, std::int64_t ns) override;
    void end(std::uint64_t thread, std::int64_t ns) override;

    // The groups, in pid and tid order; each group's functions in no particular order.
    std::vector<StatsGroup> groups(GroupBy by) const;
    std::uint64_t calls() const;
    std::size_t track_count() const;
    std::uint64_t track_slices() const;
    // Threads are counted by (pid, tid), as --by thread groups them: a process that replaced
    // itself by exec (the same pid and tid, a new image) is one thread, not two.
    std::size_t thread_count() const;
    std::size_t process_count() const;
    std::int64_t first_ns() const { return first_ns_; }
    std::int64_t last_ns() const { return last_ns_; }
    // From the first call's begin to the last end; the largest int64 if longer.
    std::int64_t span_ns() const;

 private:
    struct Frame {
        std::uint32_t name;
        std::int64_t begin_ns;
        std::int64_t child_ns;
        bool outermost;  // no call of the same function below it on the stack
    };
    struct Totals {
        std::uint64_t calls = 0;
        std::int64_t self_ns = 0;
        std::int64_t total_ns = 0;
        std::int64_t inclusive_ns = 0;
        std::int64_t max_ns = 0;
    };
    struct ThreadState {
        std::int64_t pid = 0;
        std::int64_t tid = 0;
        std::string process_name;
        std::string thread_name;
        std::vector<Frame> stack;
        std::unordered_map<std::uint32_t, std::uint32_t> on_stack;  // name -> open calls
        std::unordered_map<std::uint32_t, Totals> functions;
        std::uint64_t calls = 0;
        bool named_track = false;
    };

    NameTable names_;
    std::unordered_map<std::uint64_t, ThreadState> threads_;
    std::uint64_t ends_ = 0;
    std::int64_t first_ns_ = 0;
    std::int64_t last_ns_ = 0;
    bool any_ = false;
};

}  // namespace vztrace::analysis
