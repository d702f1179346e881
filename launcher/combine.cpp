#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "launcher/export.hpp"
#include "launcher/subcommand.hpp"
#include "launcher/subcommand_options.hpp"
#include "tracer/format/call_writers.hpp"
#include "tracer/format/time_math.hpp"
#include "tracer/one_line.hpp"
#include "tracer/output_file.hpp"

namespace vztrace::launcher {
namespace {

bool is_perfetto_name(std::string_view name) {
    return name.ends_with(".pftrace") || name.ends_with(".perfetto-trace");
}

}  // namespace

int run_combine(std::span<const std::string> args) {
    CombineOptions options;
    if (const int status = parse_combine(args, options); status >= 0) return status;
    const auto& [traces, output, align] = options;
    if (!is_perfetto_name(output)) {
        return fail(ExitCode::kUsage,
                    fmt::format("combine: '{}': combine writes Perfetto (.pftrace, "
                                ".perfetto-trace); `vztrace export` converts it",
                                output));
    }
    if (const int refused = refuse_output_over_input("combine", output, traces)) return refused;
    std::deque<format::CallLog> inputs;
    std::vector<format::CallReadResult> reads;
    for (const std::string& trace : traces) {
        format::CallReadResult read;
        if (const int error = read_trace(trace, inputs.emplace_back(), read, Warn::kLater))
            return error;
        if (align == "realtime" && !read.realtime_offset_ns) {
            return fail(ExitCode::kUsage,
                        fmt::format("combine: {} records no CLOCK_REALTIME to line it up with "
                                    "the others by; use --align start",
                                    trace));
        }
        reads.push_back(read);
    }
    for (std::size_t i = 0; i < reads.size(); ++i) warn_about_read(traces[i], reads[i]);
    const auto first_of = [](const format::CallLog& calls) {
        std::int64_t first = INT64_MAX;
        for (const format::CallLog::Thread* thread : calls.threads()) {
            if (!thread->events.empty()) first = std::min(first, thread->events.front().ns);
        }
        return first == INT64_MAX ? 0 : first;
    };
    const auto last_of = [](const format::CallLog& calls) {
        std::int64_t last = INT64_MIN;
        for (const format::CallLog::Thread* thread : calls.threads()) {
            if (!thread->events.empty()) last = std::max(last, thread->events.back().ns);
        }
        return last == INT64_MIN ? 0 : last;
    };
    std::vector<format::CallSource> sources;
    std::map<std::int64_t, std::size_t> pid_owner;
    // The times of all, on the first trace's axis: what spans more than a trace may hold
    // (73 years) could not be read back.
    std::int64_t earliest = INT64_MAX, latest = INT64_MIN;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        // Onto the first trace's time axis.
        std::int64_t shift = 0;
        const bool overflow =
            align == "realtime"
                ? __builtin_sub_overflow(*reads[i].realtime_offset_ns, *reads[0].realtime_offset_ns,
                                         &shift)
                : __builtin_sub_overflow(first_of(inputs[0]), first_of(inputs[i]), &shift);
        earliest = std::min(earliest, format::sum_saturating(first_of(inputs[i]), shift));
        latest = std::max(latest, format::sum_saturating(last_of(inputs[i]), shift));
        if (overflow || format::length_ns(earliest, latest) > format::kLongestTime) {
            return fail(ExitCode::kUsage,
                        fmt::format("combine: {} and {} lie more than 73 years apart by their "
                                    "clocks: no trace holds both; use --align start",
                                    traces[0], traces[i]));
        }
        sources.push_back(format::CallSource{&inputs[i], shift});
        for (const format::CallLog::Thread* thread : inputs[i].threads()) {
            const auto [owner, added] = pid_owner.emplace(thread->pid, i);
            if (!added && owner->second != i) {
                std::fprintf(stderr,
                             "vztrace: warning: pid %lld is in both %s and %s: Perfetto shows "
                             "them as one process\n",
                             static_cast<long long>(thread->pid),
                             tracer::one_line(traces[owner->second]).c_str(),
                             tracer::one_line(traces[i]).c_str());
                owner->second = i;  // warned once per pair
            }
        }
    }
    std::vector<std::pair<std::string, std::string>> metadata;
    for (const std::string& trace : traces) metadata.emplace_back("vztrace.combined_from", trace);
    metadata.emplace_back("vztrace.combined_align", align);
    tracer::OutputFile out(output);
    if (!out.ok()) return fail(ExitCode::kTraceNotWritten, out.error());
    remove_on_termination(out);
    const format::WriteBytes writer = [&out](std::string_view bytes) { return out.write(bytes); };
    // On the first trace's time axis: its CLOCK_REALTIME holds for all only when they were
    // lined up by it.
    const std::optional<std::int64_t> realtime =
        align == "realtime" ? reads[0].realtime_offset_ns : std::nullopt;
    if (!format::write_perfetto(sources, metadata, realtime, writer) || !out.commit()) {
        out.discard();
        return fail(ExitCode::kTraceNotWritten, out.error());
    }
    for (std::size_t i = 0; i < reads.size(); ++i) warn_left_out("combine", traces[i], reads[i]);
    return 0;
}

}  // namespace vztrace::launcher
