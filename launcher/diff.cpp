#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include "launcher/report.hpp"
#include "launcher/subcommand.hpp"
#include "launcher/subcommand_options.hpp"
#include "tracer/analysis/call_stats.hpp"
#include "tracer/format/time_math.hpp"

namespace vztrace::launcher {
namespace {

using analysis::FunctionStats;
using analysis::GroupBy;
using analysis::StatsGroup;

struct DiffRow {
    std::string name;
    FunctionStats base;  // calls == 0: not in the base trace
    FunctionStats now;   // calls == 0: not in the new trace
    std::int64_t self_change() const { return now.self_ns - base.self_ns; }
    std::int64_t total_change() const { return now.total_ns - base.total_ns; }
    bool appears() const { return base.calls == 0; }
    bool vanishes() const { return now.calls == 0; }
};

std::string change_text(std::int64_t base, std::int64_t now) {
    const double delta = ms(now - base);
    if (base == 0) return fmt::format("{:+.3f}", delta);
    return fmt::format("{:+.3f} ({:+.1f}%)", delta, percent(now - base, base));
}

std::string calls_text(const DiffRow& row) {
    if (row.appears()) return fmt::format("new: {}", row.now.calls);
    if (row.vanishes()) return fmt::format("gone: {}", row.base.calls);
    if (row.base.calls == row.now.calls) return fmt::format("{}", row.now.calls);
    return fmt::format(
        "{} -> {} ({:+})", row.base.calls, row.now.calls,
        static_cast<std::int64_t>(row.now.calls) - static_cast<std::int64_t>(row.base.calls));
}

}  // namespace

int run_diff(std::span<const std::string> args) {
    DiffOptions options;
    if (const int status = parse_diff(args, options); status >= 0) return status;
    const auto& [base_path, new_path, sort, output_format, match_text, limit, fail_over,
                 fail_on_new_calls] = options;
    NameMatch matches;
    int status = 0;
    if (!matches.compile(match_text, "diff", status)) return status;

    analysis::CallStats base_stats, new_stats;
    format::CallReadResult base_read, new_read;
    if (const int error = read_trace(base_path, base_stats, base_read, Warn::kLater); error != 0)
        return error;
    if (const int error = read_trace(new_path, new_stats, new_read, Warn::kLater); error != 0)
        return error;
    warn_about_read(base_path, base_read);
    warn_about_read(new_path, new_read);
    const auto everything = [](const analysis::CallStats& stats) {
        auto groups = stats.groups(GroupBy::kAll);
        return groups.empty() ? StatsGroup{} : std::move(groups.front());  // none: no calls
    };
    const StatsGroup base = everything(base_stats);
    const StatsGroup now = everything(new_stats);

    std::map<std::string, DiffRow> by_name;
    for (const FunctionStats& f : base.functions) {
        if (!matches(f.name)) continue;
        by_name[f.name].name = f.name;
        by_name[f.name].base = f;
    }
    for (const FunctionStats& f : now.functions) {
        if (!matches(f.name)) continue;
        by_name[f.name].name = f.name;
        by_name[f.name].now = f;
    }
    std::vector<DiffRow> rows;
    std::int64_t base_matched = 0, new_matched = 0;
    std::uint64_t base_matched_calls = 0, new_matched_calls = 0;
    std::size_t more_calls = 0, fewer_calls = 0;
    for (auto& [name, row] : by_name) {
        format::add_saturating(base_matched, row.base.total_ns);
        format::add_saturating(new_matched, row.now.total_ns);
        base_matched_calls += row.base.calls;
        new_matched_calls += row.now.calls;
        if (row.now.calls > row.base.calls) ++more_calls;
        if (row.now.calls < row.base.calls) ++fewer_calls;
        rows.push_back(std::move(row));
    }
    const auto magnitude = [&](const DiffRow& row) -> std::int64_t {
        if (sort == "total") return std::llabs(row.total_change());
        if (sort == "calls")
            return std::llabs(static_cast<std::int64_t>(row.now.calls) -
                              static_cast<std::int64_t>(row.base.calls));
        return std::llabs(row.self_change());
    };
    std::sort(rows.begin(), rows.end(), [&](const DiffRow& a, const DiffRow& b) {
        if (sort == "name") return a.name < b.name;
        const std::int64_t x = magnitude(a), y = magnitude(b);
        return x != y ? x > y : a.name < b.name;
    });
    const std::size_t matched = rows.size();
    if (limit > 0 && rows.size() > limit) rows.resize(limit);

    // What --fail-over compares: the time in calls, or the matched functions' total time;
    // the calls counted are those of the same functions.
    const std::int64_t base_time = match_text.empty() ? base.self_ns : base_matched;
    const std::int64_t new_time = match_text.empty() ? now.self_ns : new_matched;
    const std::uint64_t base_calls = match_text.empty() ? base_stats.calls() : base_matched_calls;
    const std::uint64_t new_calls = match_text.empty() ? new_stats.calls() : new_matched_calls;
    const double growth = percent(new_time - base_time, base_time);
    const std::string what = match_text.empty() ? "time in calls" : "matched functions' time";
    const std::string summary = fmt::format(
        "{}: {:.3f} ms -> {:.3f} ms ({}); calls {} -> {}; {} function{} called more often, {} "
        "less",
        what, ms(base_time), ms(new_time),
        base_time > 0 ? fmt::format("{:+.1f}%", growth) : std::string("no time in the base"),
        base_calls, new_calls, more_calls, more_calls == 1 ? "" : "s", fewer_calls);

    std::string out;
    if (output_format == "json") {
        out = fmt::format(
            "{{\"base\": {}, \"new\": {}, \"base_time_ns\": {}, \"new_time_ns\": {}, "
            "\"growth_percent\": {}, \"functions_matched\": {}, \"more_calls\": {}, "
            "\"fewer_calls\": {}, \"functions\": [",
            json_string(base_path), json_string(new_path), base_time, new_time,
            // No time in the base: no percentage (it read 0.000, and --fail-over failed).
            base_time > 0 ? fmt::format("{:.3f}", growth) : std::string("null"), matched,
            more_calls, fewer_calls);
        bool first = true;
        for (const DiffRow& row : rows) {
            out += fmt::format(
                "{}{{\"name\": {}, \"base_calls\": {}, \"new_calls\": {}, \"base_self_ns\": {}, "
                "\"new_self_ns\": {}, \"base_total_ns\": {}, \"new_total_ns\": {}, "
                "\"appears\": {}, \"vanishes\": {}}}",
                first ? "" : ", ", json_string(row.name), row.base.calls, row.now.calls,
                row.base.self_ns, row.now.self_ns, row.base.total_ns, row.now.total_ns,
                row.appears() ? "true" : "false", row.vanishes() ? "true" : "false");
            first = false;
        }
        out += "]}\n";
    } else if (output_format == "markdown") {
        out = fmt::format("**vztrace diff** {} → {}\n\n{}\n\n", markdown_code(base_path),
                          markdown_code(new_path), markdown_cell(summary));
        out += "| function | calls | self ms | self change ms | total ms | total change ms |\n";
        out += "|---|---:|---:|---:|---:|---:|\n";
        for (const DiffRow& row : rows) {
            out += fmt::format("| {} | {} | {:.3f} | {} | {:.3f} | {} |\n", markdown_code(row.name),
                               calls_text(row), ms(row.now.self_ns),
                               change_text(row.base.self_ns, row.now.self_ns), ms(row.now.total_ns),
                               change_text(row.base.total_ns, row.now.total_ns));
        }
        if (rows.size() < matched)
            out += fmt::format("\n({} of {} functions shown)\n", rows.size(), matched);
    } else {
        constexpr std::string_view kColumns =
            "                     calls    self ms   self change ms   total ms  total change ms  ";
        const std::size_t width = name_width(kColumns.size());
        out = fmt::format("{} -> {}\n{}\n\n{}function\n", fitted(base_path, 0), fitted(new_path, 0),
                          summary, kColumns);
        for (const DiffRow& row : rows) {
            out +=
                fmt::format("{:>26} {:10.3f} {:>16} {:10.3f} {:>16}  {}\n", calls_text(row),
                            ms(row.now.self_ns), change_text(row.base.self_ns, row.now.self_ns),
                            ms(row.now.total_ns), change_text(row.base.total_ns, row.now.total_ns),
                            fitted(row.name, width));
        }
        if (rows.size() < matched)
            out += fmt::format("({} of {} functions shown)\n", rows.size(), matched);
    }
    if (const int written = finish_output(out); written != 0) return written;

    // From no time at all to some is growth past any limit (with --match: functions that
    // took no time, or were not called, in the base).
    // Each gate that trips says so; the time's status comes first when both do.
    const bool grew_from_nothing = base_time <= 0 && new_time > 0;
    int gated = 0;
    if (fail_over >= 0 && grew_from_nothing) {
        std::fprintf(stderr,
                     "vztrace: diff: the %s grew from none to %.3f ms, over --fail-over %g%%\n",
                     what.c_str(), ms(new_time), fail_over);
        gated = static_cast<int>(ExitCode::kRegressed);
    } else if (fail_over >= 0 && base_time > 0 && growth > fail_over) {
        std::fprintf(stderr, "vztrace: diff: the %s grew by %.1f%%, over --fail-over %g%%\n",
                     what.c_str(), growth, fail_over);
        gated = static_cast<int>(ExitCode::kRegressed);
    }
    if (fail_on_new_calls && more_calls > 0) {
        std::fprintf(stderr,
                     "vztrace: diff: %zu function%s called more often in the new trace "
                     "(--fail-on-new-calls)\n",
                     more_calls, more_calls == 1 ? " is" : "s are");
        if (gated == 0) gated = static_cast<int>(ExitCode::kNewCalls);
    }
    return gated;
}

}  // namespace vztrace::launcher
