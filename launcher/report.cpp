#include "launcher/report.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include "launcher/subcommand.hpp"
#include "launcher/subcommand_options.hpp"
#include "tracer/analysis/call_stats.hpp"
#include "tracer/format/chrome_json.hpp"

namespace vztrace::launcher {
namespace {

using analysis::FunctionStats;
using analysis::GroupBy;
using analysis::StatsGroup;

void sort_functions(std::vector<FunctionStats>& functions, const std::string& key) {
    const auto by = [&](const FunctionStats& f) -> std::int64_t {
        if (key == "total") return f.total_ns;
        if (key == "calls") return static_cast<std::int64_t>(f.calls);
        if (key == "mean") return f.mean_ns();
        if (key == "max") return f.max_ns;
        return f.self_ns;
    };
    std::sort(functions.begin(), functions.end(),
              [&](const FunctionStats& a, const FunctionStats& b) {
                  if (key == "name") return a.name < b.name;
                  const std::int64_t x = by(a), y = by(b);
                  return x != y ? x > y : a.name < b.name;
              });
}

std::string group_title(const StatsGroup& group, GroupBy by) {
    if (by == GroupBy::kAll) return "all processes and threads";
    std::string title = fmt::format("process {}", group.pid);
    // Names as the program gave them, control characters shown escaped (a thread named
    // "a\n" broke the heading's line), as function names are.
    if (!group.process_name.empty()) title += fmt::format(" ({})", fitted(group.process_name, 0));
    if (by == GroupBy::kThread) {
        title += fmt::format(", {} {}", group.named_track ? "track" : "thread", group.tid);
        if (!group.thread_name.empty()) title += fmt::format(" ({})", fitted(group.thread_name, 0));
    }
    return title;
}

bool incomplete(const std::vector<format::RecordingGap>& gaps) {
    return std::any_of(gaps.begin(), gaps.end(),
                       [](const format::RecordingGap& gap) { return gap.warning; });
}

// The header's lines under its first: what the trace lacks, as its recorder says.
std::string gap_lines(const std::vector<format::RecordingGap>& gaps, bool markdown) {
    std::string out;
    for (const format::RecordingGap& gap : gaps) {
        const std::string_view label = gap.warning ? "incomplete" : "note";
        out += markdown ? fmt::format("\n\n> **{}:** {}", label, markdown_cell(gap.text))
                        : fmt::format("\n{}: {}", label, fitted(gap.text, 0));
    }
    return out;
}

struct Shown {
    const StatsGroup* group;
    std::vector<FunctionStats> functions;  // matched, sorted, limited
    std::size_t matched = 0;
};

std::string render_text(const std::vector<Shown>& shown, GroupBy by, const std::string& header) {
    constexpr std::string_view kColumns =
        "   self ms  self %   total ms total %      calls    mean us     max us  ";
    const std::size_t width = name_width(kColumns.size());
    std::string out = header + "\n";
    for (const Shown& group : shown) {
        out += fmt::format("\n{}: {:.3f} ms in calls, {} function{}{}\n",
                           group_title(*group.group, by), ms(group.group->self_ns), group.matched,
                           group.matched == 1 ? "" : "s",
                           group.functions.size() < group.matched
                               ? fmt::format(" (the first {} shown)", group.functions.size())
                               : "");
        out += std::string(kColumns) + "function\n";
        for (const FunctionStats& f : group.functions) {
            out += fmt::format("{:10.3f} {:6.1f}% {:10.3f} {:6.1f}% {:10} {:10.1f} {:10.1f}  {}\n",
                               ms(f.self_ns), percent(f.self_ns, group.group->self_ns),
                               ms(f.total_ns), percent(f.total_ns, group.group->self_ns), f.calls,
                               us(f.mean_ns()), us(f.max_ns), fitted(f.name, width));
        }
    }
    return out;
}

std::string render_markdown(const std::vector<Shown>& shown, GroupBy by,
                            const std::string& header) {
    std::string out = header + "\n";
    for (const Shown& group : shown) {
        out += fmt::format("\n### {}\n\n{:.3f} ms in calls, {} function{}{}\n\n",
                           markdown_cell(group_title(*group.group, by)), ms(group.group->self_ns),
                           group.matched, group.matched == 1 ? "" : "s",
                           group.functions.size() < group.matched
                               ? fmt::format(" (the first {} shown)", group.functions.size())
                               : "");
        out += "| function | calls | self ms | self % | total ms | total % | mean us | max us |\n";
        out += "|---|---:|---:|---:|---:|---:|---:|---:|\n";
        for (const FunctionStats& f : group.functions) {
            out += fmt::format(
                "| {} | {} | {:.3f} | {:.1f} | {:.3f} | {:.1f} | {:.1f} | {:.1f} |\n",
                markdown_code(f.name), f.calls, ms(f.self_ns),
                percent(f.self_ns, group.group->self_ns), ms(f.total_ns),
                percent(f.total_ns, group.group->self_ns), us(f.mean_ns()), us(f.max_ns));
        }
    }
    return out;
}

std::string render_json(const std::vector<Shown>& shown, const ReportOptions& options,
                        const format::CallReadResult& read, const analysis::CallStats& stats,
                        const std::vector<format::RecordingGap>& gaps) {
    std::string out = fmt::format(
        "{{\"trace\": {}, \"format\": {}, \"truncated\": {}, \"calls\": {}, \"threads\": {}, "
        "\"processes\": {}, \"tracks\": {}, \"track_slices\": {}, \"span_ns\": {}, "
        "\"by\": {}, \"sort\": {}, ",
        json_string(options.trace), json_string(read.format),
        read.truncated || read.ends_early || read.calls_left_open > 0 ? "true" : "false",
        stats.calls(), stats.thread_count(), stats.process_count(), stats.track_count(),
        stats.track_slices(), stats.span_ns(), json_string(options.by), json_string(options.sort));
    // What the recorder said: the trace's metadata as it holds it, and what it lacks.
    out += fmt::format("\"incomplete\": {}, \"gaps\": [", incomplete(gaps) ? "true" : "false");
    for (std::size_t i = 0; i < gaps.size(); ++i) {
        out += fmt::format("{}{{\"warning\": {}, \"text\": {}}}", i == 0 ? "" : ", ",
                           gaps[i].warning ? "true" : "false", json_string(gaps[i].text));
    }
    out += fmt::format("], \"recorder\": {}, \"recording\": {{", json_string(read.recorder));
    // A key the trace holds more than once (combine's combined_from, one an input) is one
    // member whose value is the list of them, in order: JSON readers keep one of a name.
    std::vector<std::pair<std::string_view, std::vector<std::string_view>>> members;
    for (const auto& [key, value] : read.recording) {
        auto member = std::find_if(members.begin(), members.end(),
                                   [&key](const auto& found) { return found.first == key; });
        if (member == members.end()) member = members.insert(members.end(), {key, {}});
        member->second.push_back(value);
    }
    for (std::size_t i = 0; i < members.size(); ++i) {
        const auto& [key, values] = members[i];
        out += fmt::format("{}{}: ", i == 0 ? "" : ", ", json_string(key));
        if (values.size() == 1) {
            out += json_string(values[0]);
            continue;
        }
        for (std::size_t j = 0; j < values.size(); ++j)
            out += fmt::format("{}{}", j == 0 ? "[" : ", ", json_string(values[j]));
        out += "]";
    }
    out += "}, \"groups\": [";
    bool first_group = true;
    for (const Shown& group : shown) {
        const StatsGroup& g = *group.group;
        out += fmt::format(
            "{}{{\"pid\": {}, \"tid\": {}, \"process_name\": {}, \"thread_name\": {}, "
            "\"track\": {}, \"self_ns\": {}, \"functions_matched\": {}, \"functions\": [",
            first_group ? "" : ", ", g.pid, g.tid, json_string(g.process_name),
            json_string(g.thread_name), g.named_track ? "true" : "false", g.self_ns, group.matched);
        first_group = false;
        bool first = true;
        for (const FunctionStats& f : group.functions) {
            out += fmt::format(
                "{}{{\"name\": {}, \"calls\": {}, \"self_ns\": {}, \"total_ns\": {}, "
                "\"mean_ns\": {}, \"max_ns\": {}}}",
                first ? "" : ", ", json_string(f.name), f.calls, f.self_ns, f.total_ns, f.mean_ns(),
                f.max_ns);
            first = false;
        }
        out += "]}";
    }
    out += "]}\n";
    return out;
}

}  // namespace

int run_report(std::span<const std::string> args) {
    ReportOptions options;
    if (const int status = parse_report(args, options); status >= 0) return status;
    NameMatch matches;
    int status = 0;
    if (!matches.compile(options.match, "report", status)) return status;
    analysis::CallStats stats;
    format::CallReadResult read;
    if (const int error = read_trace(options.trace, stats, read, Warn::kNotGaps); error != 0)
        return error;
    const std::vector<format::RecordingGap> gaps = format::recording_gaps(read);

    const GroupBy by = options.by == "thread"    ? GroupBy::kThread
                       : options.by == "process" ? GroupBy::kProcess
                                                 : GroupBy::kAll;
    const std::vector<StatsGroup> groups = stats.groups(by);
    std::vector<Shown> shown;
    for (const StatsGroup& group : groups) {
        Shown entry{&group, {}, 0};
        for (const FunctionStats& f : group.functions) {
            if (!matches(f.name)) continue;
            entry.functions.push_back(f);
        }
        entry.matched = entry.functions.size();
        sort_functions(entry.functions, options.sort);
        if (options.limit > 0 && entry.functions.size() > options.limit)
            entry.functions.resize(options.limit);
        shown.push_back(std::move(entry));
    }
    const std::size_t threads = stats.thread_count();
    const std::size_t processes = stats.process_count();
    std::string header = fmt::format(
        "{} ({}{}{}): {} call{} in {} thread{} of {} process{}, over {:.3f} ms",
        fitted(options.trace, 0), read.format,
        read.truncated || read.ends_early || read.calls_left_open > 0 ? ", truncated" : "",
        incomplete(gaps) ? ", incomplete" : "", stats.calls(), stats.calls() == 1 ? "" : "s",
        threads, threads == 1 ? "" : "s", processes, processes == 1 ? "" : "es",
        ms(stats.span_ns()));
    // Named tracks (asyncio tasks under --log-async) hold steps, not calls: said apart.
    if (const std::size_t tracks = stats.track_count(); tracks > 0) {
        const std::uint64_t slices = stats.track_slices();
        header += fmt::format(
            "; {} slice{} on {} track{} of their own (asyncio tasks), "
            "not counted as calls",
            slices, slices == 1 ? "" : "s", tracks, tracks == 1 ? "" : "s");
    }
    std::string out;
    if (options.format == "json") {
        out = render_json(shown, options, read, stats, gaps);
    } else if (options.format == "markdown") {
        out =
            render_markdown(shown, by, "**" + markdown_cell(header) + "**" + gap_lines(gaps, true));
    } else {
        out = render_text(shown, by, header + gap_lines(gaps, false));
    }
    return finish_output(out);
}

}  // namespace vztrace::launcher
