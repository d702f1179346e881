#include "launcher/report.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <regex>
#include <vector>

#include "launcher/subcommand.hpp"
#include "tracer/format/call_stats.hpp"
#include "tracer/format/chrome_json.hpp"

namespace vztrace::launcher {
namespace {

using format::FunctionStats;
using format::GroupBy;
using format::StatsGroup;

struct ReportOptions {
    std::string trace;
    std::string by = "all";
    std::string sort = "self";
    std::string format = "text";
    std::string match;
    std::size_t limit = 30;
};

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
    if (!group.process_name.empty()) title += fmt::format(" ({})", group.process_name);
    if (by == GroupBy::kThread) {
        title += fmt::format(", thread {}", group.tid);
        if (!group.thread_name.empty()) title += fmt::format(" ({})", group.thread_name);
    }
    return title;
}

double percent(std::int64_t part, std::int64_t whole) {
    return whole <= 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

double ms(std::int64_t ns) { return static_cast<double>(ns) / 1e6; }
double us(std::int64_t ns) { return static_cast<double>(ns) / 1e3; }

// Columns left for names: the terminal's width when stdout is one, else $COLUMNS, else
// no limit (a file or a CI log keeps whole names).
std::size_t name_width(std::size_t used) {
    std::size_t columns = 0;
    winsize size{};
    if (::isatty(STDOUT_FILENO) && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0) {
        columns = size.ws_col;
    } else if (const char* env = std::getenv("COLUMNS")) {
        columns = static_cast<std::size_t>(std::max(0L, std::atol(env)));
    }
    if (columns == 0) return 0;
    return columns > used + 20 ? columns - used : 20;
}

// Keeps the start (the function) and the end (file and line) of a long name.
std::string fitted(const std::string& name, std::size_t width) {
    if (width == 0 || name.size() <= width) return name;
    const std::size_t head = (width - 3) / 2;
    const std::size_t tail = width - 3 - head;
    return name.substr(0, head) + "..." + name.substr(name.size() - tail);
}

std::string markdown_cell(const std::string& text) {
    std::string out;
    for (const char c : text) {
        if (c == '|') out += '\\';
        out += c;
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
        out += fmt::format("\n{}: {:.3f} ms in calls, {} functions{}\n",
                           group_title(*group.group, by), ms(group.group->self_ns), group.matched,
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
        out += fmt::format("\n### {}\n\n{:.3f} ms in calls, {} functions{}\n\n",
                           markdown_cell(group_title(*group.group, by)), ms(group.group->self_ns),
                           group.matched,
                           group.functions.size() < group.matched
                               ? fmt::format(" (the first {} shown)", group.functions.size())
                               : "");
        out += "| function | calls | self ms | self % | total ms | total % | mean us | max us |\n";
        out += "|---|---:|---:|---:|---:|---:|---:|---:|\n";
        for (const FunctionStats& f : group.functions) {
            out += fmt::format(
                "| `{}` | {} | {:.3f} | {:.1f} | {:.3f} | {:.1f} | {:.1f} | {:.1f} |\n",
                markdown_cell(f.name), f.calls, ms(f.self_ns),
                percent(f.self_ns, group.group->self_ns), ms(f.total_ns),
                percent(f.total_ns, group.group->self_ns), us(f.mean_ns()), us(f.max_ns));
        }
    }
    return out;
}

std::string render_json(const std::vector<Shown>& shown, const ReportOptions& options,
                        const format::CallReadResult& read, const format::CallStats& stats) {
    std::string out = fmt::format(
        "{{\"trace\": {}, \"format\": {}, \"truncated\": {}, \"calls\": {}, \"span_ns\": {}, "
        "\"by\": {}, \"sort\": {}, \"groups\": [",
        json_string(options.trace), json_string(read.format), read.truncated ? "true" : "false",
        stats.calls(), stats.last_ns() - stats.first_ns(), json_string(options.by),
        json_string(options.sort));
    bool first_group = true;
    for (const Shown& group : shown) {
        const StatsGroup& g = *group.group;
        out += fmt::format(
            "{}{{\"pid\": {}, \"tid\": {}, \"process_name\": {}, \"thread_name\": {}, "
            "\"self_ns\": {}, \"functions_matched\": {}, \"functions\": [",
            first_group ? "" : ", ", g.pid, g.tid, json_string(g.process_name),
            json_string(g.thread_name), g.self_ns, group.matched);
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
    CLI::App app{"vztrace report: where a trace's time went, by function", "vztrace report"};
    app.set_help_flag("-h,--help", "Print this help and exit");
    app.add_option("trace", options.trace,
                   "The trace: vztrace's .pftrace, .json or .json.gz, or VizTracer's JSON")
        ->required()
        ->type_name("TRACE");
    app.add_option("--by", options.by, "One table for all, or one per process or per thread")
        ->check(CLI::IsMember({"all", "process", "thread"}))
        ->capture_default_str();
    app.add_option("--sort", options.sort, "Order of the functions")
        ->check(CLI::IsMember({"self", "total", "calls", "mean", "max", "name"}))
        ->capture_default_str();
    app.add_option("--limit", options.limit, "Functions shown per table (0: all)")
        ->capture_default_str();
    app.add_option("--match", options.match,
                   "Only the functions whose name contains a match of this regular expression")
        ->type_name("REGEX");
    app.add_option("--format", options.format, "text (a terminal), markdown (a pull request), json")
        ->check(CLI::IsMember({"text", "markdown", "json"}))
        ->capture_default_str();
    app.footer(
        "Self time is a function's own; total time includes its callees, each call counted "
        "once under recursion. Percentages are of the time spent in calls.\n"
        "Exit status: 0, 2 bad command line, 65 not a trace or damaged, 66 cannot be read.");
    if (const int status = parse_subcommand(app, "report", args); status >= 0) return status;
    std::regex match;
    int status = 0;
    if (!compile_match(options.match, "report", match, status)) return status;
    format::CallStats stats;
    format::CallReadResult read;
    if (const int error = read_trace(options.trace, stats, read); error != 0) return error;

    const GroupBy by = options.by == "thread"    ? GroupBy::kThread
                       : options.by == "process" ? GroupBy::kProcess
                                                 : GroupBy::kAll;
    const std::vector<StatsGroup> groups = stats.groups(by);
    std::vector<Shown> shown;
    for (const StatsGroup& group : groups) {
        Shown entry{&group, {}, 0};
        for (const FunctionStats& f : group.functions) {
            if (!options.match.empty() && !std::regex_search(f.name, match)) continue;
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
    const std::string header =
        fmt::format("{} ({}{}): {} calls in {} thread{} of {} process{}, over {:.3f} ms",
                    options.trace, read.format, read.truncated ? ", truncated" : "", stats.calls(),
                    threads, threads == 1 ? "" : "s", processes, processes == 1 ? "" : "es",
                    ms(stats.last_ns() - stats.first_ns()));
    std::string out;
    if (options.format == "json") {
        out = render_json(shown, options, read, stats);
    } else if (options.format == "markdown") {
        out = render_markdown(shown, by, "**" + markdown_cell(header) + "**");
    } else {
        out = render_text(shown, by, header);
    }
    return finish_output(out);
}

}  // namespace vztrace::launcher

namespace vztrace::launcher {
namespace {

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
    std::string base_path, new_path, sort = "self", output_format = "text", match_text;
    std::size_t limit = 30;
    double fail_over = -1;
    bool fail_on_new_calls = false;
    CLI::App app{"vztrace diff: what changed between two traces, by function", "vztrace diff"};
    app.set_help_flag("-h,--help", "Print this help and exit");
    app.add_option("base", base_path, "The trace before the change")->required()->type_name("BASE");
    app.add_option("new", new_path, "The trace after it")->required()->type_name("NEW");
    app.add_option("--sort", sort, "By the change of self or total time, or of calls")
        ->check(CLI::IsMember({"self", "total", "calls", "name"}))
        ->capture_default_str();
    app.add_option("--limit", limit, "Functions shown (0: all)")->capture_default_str();
    app.add_option("--match", match_text,
                   "Only the functions whose name contains a match of this regular expression "
                   "(also what --fail-over and --fail-on-new-calls look at)")
        ->type_name("REGEX");
    app.add_option("--format", output_format, "text, markdown (a pull request) or json")
        ->check(CLI::IsMember({"text", "markdown", "json"}))
        ->capture_default_str();
    app.add_option("--fail-over", fail_over,
                   "Exit 1 when the new trace's time grew by more than PCT percent: the time "
                   "in calls, or with --match the matched functions' total time")
        ->type_name("PCT")
        ->check(CLI::NonNegativeNumber);
    app.add_flag("--fail-on-new-calls", fail_on_new_calls,
                 "Exit 4 when a function (matched by --match) is called more often in the new "
                 "trace, or appears in it");
    app.footer(
        "Call counts are exact and compared on their own; times are noisy: use --fail-over "
        "with a margin.\nExit status: 0, 1 time past --fail-over, 4 more calls with "
        "--fail-on-new-calls, 2 bad command line, 65 not a trace or damaged, 66 cannot be "
        "read.");
    if (const int status = parse_subcommand(app, "diff", args); status >= 0) return status;
    std::regex match;
    int status = 0;
    if (!compile_match(match_text, "diff", match, status)) return status;
    const auto matches = [&](const std::string& name) {
        return match_text.empty() || std::regex_search(name, match);
    };

    format::CallStats base_stats, new_stats;
    format::CallReadResult base_read, new_read;
    if (const int error = read_trace(base_path, base_stats, base_read); error != 0) return error;
    if (const int error = read_trace(new_path, new_stats, new_read); error != 0) return error;
    const auto everything = [](const format::CallStats& stats) {
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
    std::size_t more_calls = 0, fewer_calls = 0;
    for (auto& [name, row] : by_name) {
        base_matched += row.base.total_ns;
        new_matched += row.now.total_ns;
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

    // What --fail-over compares: the time in calls, or the matched functions' total time.
    const std::int64_t base_time = match_text.empty() ? base.self_ns : base_matched;
    const std::int64_t new_time = match_text.empty() ? now.self_ns : new_matched;
    const double growth = percent(new_time - base_time, base_time);
    const std::string what = match_text.empty() ? "time in calls" : "matched functions' time";
    const std::string summary = fmt::format(
        "{}: {:.3f} ms -> {:.3f} ms ({}); calls {} -> {}; {} functions called more often, {} "
        "less",
        what, ms(base_time), ms(new_time),
        base_time > 0 ? fmt::format("{:+.1f}%", growth) : std::string("no time in the base"),
        base_stats.calls(), new_stats.calls(), more_calls, fewer_calls);

    std::string out;
    if (output_format == "json") {
        out = fmt::format(
            "{{\"base\": {}, \"new\": {}, \"base_time_ns\": {}, \"new_time_ns\": {}, "
            "\"growth_percent\": {:.3f}, \"functions_matched\": {}, \"more_calls\": {}, "
            "\"fewer_calls\": {}, \"functions\": [",
            json_string(base_path), json_string(new_path), base_time, new_time, growth, matched,
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
        out = fmt::format("**vztrace diff** `{}` → `{}`\n\n{}\n\n", markdown_cell(base_path),
                          markdown_cell(new_path), markdown_cell(summary));
        out += "| function | calls | self ms | self change ms | total ms | total change ms |\n";
        out += "|---|---:|---:|---:|---:|---:|\n";
        for (const DiffRow& row : rows) {
            out += fmt::format("| `{}` | {} | {:.3f} | {} | {:.3f} | {} |\n",
                               markdown_cell(row.name), calls_text(row), ms(row.now.self_ns),
                               change_text(row.base.self_ns, row.now.self_ns), ms(row.now.total_ns),
                               change_text(row.base.total_ns, row.now.total_ns));
        }
        if (rows.size() < matched)
            out += fmt::format("\n({} of {} functions shown)\n", rows.size(), matched);
    } else {
        constexpr std::string_view kColumns =
            "                     calls    self ms   self change ms   total ms  total change ms  ";
        const std::size_t width = name_width(kColumns.size());
        out = fmt::format("{} -> {}\n{}\n\n{}function\n", base_path, new_path, summary, kColumns);
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

    if (fail_over >= 0 && base_time > 0 && growth > fail_over) {
        std::fprintf(stderr, "vztrace: diff: the %s grew by %.1f%%, over --fail-over %g%%\n",
                     what.c_str(), growth, fail_over);
        return static_cast<int>(ExitCode::kRegressed);
    }
    if (fail_on_new_calls && more_calls > 0) {
        std::fprintf(stderr,
                     "vztrace: diff: %zu function%s called more often in the new trace "
                     "(--fail-on-new-calls)\n",
                     more_calls, more_calls == 1 ? " is" : "s are");
        return static_cast<int>(ExitCode::kNewCalls);
    }
    return 0;
}

}  // namespace vztrace::launcher
