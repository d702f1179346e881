#include "tracer/analysis/call_stats.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <tuple>
#include <utility>

#include "tracer/format/time_math.hpp"

namespace vztrace::analysis {
using format::add_saturating;  // sums stop at the largest int64 (time_math.hpp)
using format::length_ns;

void CallStats::thread(std::uint64_t thread, std::int64_t pid, std::int64_t tid,
                       std::string_view process_name, std::string_view thread_name) {
    ThreadState& state = threads_[thread];
    state.pid = pid;
    state.tid = tid;
    state.process_name = process_name;
    state.thread_name = thread_name;
}

void CallStats::named_track(std::uint64_t track, std::int64_t pid, std::int64_t tid,
                            std::string_view process_name, std::string_view track_name) {
    thread(track, pid, tid, process_name, track_name);
    threads_[track].named_track = true;
}

std::uint64_t CallStats::calls() const {
    std::uint64_t calls = 0;
    for (const auto& [key, state] : threads_) calls += state.named_track ? 0 : state.calls;
    return calls;
}

std::size_t CallStats::track_count() const {
    return static_cast<std::size_t>(
        std::count_if(threads_.begin(), threads_.end(),
                      [](const auto& entry) { return entry.second.named_track; }));
}

std::uint64_t CallStats::track_slices() const {
    std::uint64_t slices = 0;
    for (const auto& [key, state] : threads_) slices += state.named_track ? state.calls : 0;
    return slices;
}

void CallStats::begin(std::uint64_t thread, std::string_view name, std::int64_t ns) {
    ThreadState& state = threads_[thread];
    const std::uint32_t id = names_.id(name);
    const bool outermost = state.on_stack[id]++ == 0;
    state.stack.push_back(Frame{id, ns, 0, outermost});
    if (!any_ || ns < first_ns_) first_ns_ = ns;
    any_ = true;
}

void CallStats::end(std::uint64_t thread, std::int64_t ns) {
    ThreadState& state = threads_[thread];
    if (state.stack.empty()) return;  // an end with no begin (a ring's cut): nothing to add
    const Frame frame = state.stack.back();
    state.stack.pop_back();
    const std::int64_t duration = length_ns(frame.begin_ns, ns);
    --state.on_stack[frame.name];
    Totals& totals = state.functions[frame.name];
    ++totals.calls;
    add_saturating(totals.self_ns, std::max<std::int64_t>(duration - frame.child_ns, 0));
    if (frame.outermost) add_saturating(totals.total_ns, duration);
    add_saturating(totals.inclusive_ns, duration);
    totals.max_ns = std::max(totals.max_ns, duration);
    if (!state.stack.empty()) add_saturating(state.stack.back().child_ns, duration);
    ++state.calls;
    last_ns_ = ++ends_ == 1 ? ns : std::max(last_ns_, ns);  // times may be negative (JSON)
}

std::int64_t CallStats::span_ns() const { return length_ns(first_ns_, last_ns_); }

std::size_t CallStats::thread_count() const {
    std::vector<std::pair<std::int64_t, std::int64_t>> threads;
    for (const auto& [key, state] : threads_) {
        if (!state.named_track) threads.emplace_back(state.pid, state.tid);
    }
    std::sort(threads.begin(), threads.end());
    return static_cast<std::size_t>(std::unique(threads.begin(), threads.end()) - threads.begin());
}

std::size_t CallStats::process_count() const {
    std::vector<std::int64_t> pids;
    for (const auto& [key, state] : threads_) pids.push_back(state.pid);
    std::sort(pids.begin(), pids.end());
    return static_cast<std::size_t>(std::unique(pids.begin(), pids.end()) - pids.begin());
}

std::vector<StatsGroup> CallStats::groups(GroupBy by) const {
    // Group key: (pid, tid) as far as `by` goes.
    std::map<std::tuple<std::int64_t, std::int64_t>, StatsGroup> groups;
    std::map<std::tuple<std::int64_t, std::int64_t>, std::unordered_map<std::uint32_t, Totals>>
        merged;
    for (const auto& [key, state] : threads_) {
        if (state.named_track && by != GroupBy::kThread) continue;
        const std::int64_t pid = by == GroupBy::kAll ? 0 : state.pid;
        const std::int64_t tid = by == GroupBy::kThread ? state.tid : 0;
        StatsGroup& group = groups[{pid, tid}];
        group.pid = pid;
        group.tid = tid;
        if (by != GroupBy::kAll && group.process_name.empty())
            group.process_name = state.process_name;
        if (by == GroupBy::kThread) group.thread_name = state.thread_name;
        group.named_track = state.named_track;
        auto& functions = merged[{pid, tid}];
        for (const auto& [name, totals] : state.functions) {
            Totals& into = functions[name];
            into.calls += totals.calls;
            add_saturating(into.self_ns, totals.self_ns);
            add_saturating(into.total_ns, totals.total_ns);
            add_saturating(into.inclusive_ns, totals.inclusive_ns);
            into.max_ns = std::max(into.max_ns, totals.max_ns);
        }
    }
    std::vector<StatsGroup> result;
    for (auto& [key, group] : groups) {
        for (const auto& [name, totals] : merged[key]) {
            FunctionStats stats;
            stats.name = names_.name(name);
            stats.calls = totals.calls;
            stats.self_ns = totals.self_ns;
            stats.total_ns = totals.total_ns;
            stats.inclusive_ns = totals.inclusive_ns;
            stats.max_ns = totals.max_ns;
            add_saturating(group.self_ns, totals.self_ns);
            group.functions.push_back(std::move(stats));
        }
        result.push_back(std::move(group));
    }
    return result;
}

}  // namespace vztrace::analysis
