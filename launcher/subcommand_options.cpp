#include "launcher/subcommand_options.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "launcher/command_line.hpp"
#include "launcher/subcommand.hpp"

namespace vztrace::launcher {

namespace {

// The -h,--help flag and the TRACE positional of the subcommands that read one trace.
void add_trace_arguments(CLI::App& app, std::string& trace) {
    app.set_help_flag("-h,--help", "Print this help and exit");
    app.add_option("trace", trace,
                   "The trace: vztrace's .pftrace, .json or .json.gz, or VizTracer's JSON")
        ->required()
        ->type_name("TRACE");
}

// A count: 0, 1, ...; "-5" is refused, not wrapped around.
CLI::Validator whole_number() {
    return CLI::Validator(
        [](const std::string& text) -> std::string {
            const bool digits =
                !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
            errno = 0;
            if (digits) static_cast<void>(std::strtoull(text.c_str(), nullptr, 10));
            if (!digits || errno == ERANGE)
                return fmt::format("'{}' is not a whole number of 0 or more", text);
            return {};
        },
        "N");
}

// A percentage: finite, 0 or more.
CLI::Validator percentage() {
    return CLI::Validator(
        [](const std::string& text) -> std::string {
            const bool decimal = !text.empty() && decimal_length(text) == text.size();
            const double value = decimal ? std::strtod(text.c_str(), nullptr) : -1;
            if (!decimal || !std::isfinite(value) || value < 0)
                return fmt::format("'{}' is not a percentage of 0 or more", text);
            return {};
        },
        "PCT");
}

int parse(CLI::App& app, const std::string& name, std::span<const std::string> args) {
    std::vector<std::string> argv = {"vztrace " + name};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<const char*> raw;
    for (const std::string& arg : argv) raw.push_back(arg.c_str());
    try {
        app.parse(static_cast<int>(raw.size()), raw.data());
    } catch (const CLI::CallForHelp&) {
        std::fputs(app.help().c_str(), stdout);  // stdout ok: no program runs here
        return 0;
    } catch (const CLI::ParseError& error) {
        return fail(ExitCode::kUsage, fmt::format("{}: {}", name, error.what()));
    }
    return -1;
}

}  // namespace

int parse_report(std::span<const std::string> args, ReportOptions& options) {
    CLI::App app{"vztrace report: where a trace's time went, by function", "vztrace report"};
    add_trace_arguments(app, options.trace);
    app.add_option("--by", options.by, "One table for all, or one per process or per thread")
        ->check(CLI::IsMember({"all", "process", "thread"}))
        ->capture_default_str();
    app.add_option("--sort", options.sort, "Order of the functions")
        ->check(CLI::IsMember({"self", "total", "calls", "mean", "max", "name"}))
        ->capture_default_str();
    app.add_option("--limit", options.limit, "Functions shown per table (0: all)")
        ->check(whole_number())
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
        "Exit status: 0, 2 bad command line, 65 not a trace or damaged, 66 cannot be read, 71 "
        "out of memory.");
    return parse(app, "report", args);
}

int parse_diff(std::span<const std::string> args, DiffOptions& options) {
    CLI::App app{"vztrace diff: what changed between two traces, by function", "vztrace diff"};
    app.set_help_flag("-h,--help", "Print this help and exit");
    app.add_option("base", options.base, "The trace before the change")
        ->required()
        ->type_name("BASE");
    app.add_option("new", options.next, "The trace after it")->required()->type_name("NEW");
    app.add_option("--sort", options.sort, "By the change of self or total time, or of calls")
        ->check(CLI::IsMember({"self", "total", "calls", "name"}))
        ->capture_default_str();
    app.add_option("--limit", options.limit, "Functions shown (0: all)")
        ->check(whole_number())
        ->capture_default_str();
    app.add_option("--match", options.match,
                   "Only the functions whose name contains a match of this regular expression "
                   "(also what --fail-over and --fail-on-new-calls look at)")
        ->type_name("REGEX");
    app.add_option("--format", options.format, "text, markdown (a pull request) or json")
        ->check(CLI::IsMember({"text", "markdown", "json"}))
        ->capture_default_str();
    app.add_option("--fail-over", options.fail_over,
                   "Exit 1 when the new trace's time grew by more than PCT percent: the time "
                   "in calls, or with --match the matched functions' total time")
        ->type_name("PCT")
        ->check(percentage());
    app.add_flag("--fail-on-new-calls", options.fail_on_new_calls,
                 "Exit 4 when a function (matched by --match) is called more often in the new "
                 "trace, or appears in it");
    app.footer(
        "Call counts are exact and compared on their own; times are noisy: use --fail-over "
        "with a margin.\nExit status: 0, 1 time past --fail-over, 4 more calls with "
        "--fail-on-new-calls, 2 bad command line, 65 not a trace or damaged, 66 cannot be "
        "read, 71 out of memory.");
    return parse(app, "diff", args);
}

int parse_export(std::span<const std::string> args, ExportOptions& options) {
    CLI::App app{"vztrace export: a trace in another format", "vztrace export"};
    add_trace_arguments(app, options.trace);
    app.add_option("-o,--output", options.output,
                   fmt::format("The file to write; its extension names the format: {}. An "
                               "existing file is replaced once the new one is complete",
                               kExportFormats))
        ->required()
        ->type_name("OUT");
    app.footer(
        "Formats: Chrome JSON (chrome://tracing, Perfetto, vizviewer), gzipped; speedscope's "
        "evented profiles (one a thread); collapsed stacks for flamegraph.pl and inferno (self "
        "time in nanoseconds); pstats, the marshal format of cProfile's dump_stats "
        "(pstats.Stats, snakeviz).\nExit status: 0, 2 bad command line, 65 not a trace or "
        "damaged, 66 cannot be read, 71 out of memory, 74 the output cannot be written.");
    return parse(app, "export", args);
}

int parse_combine(std::span<const std::string> args, CombineOptions& options) {
    CLI::App app{"vztrace combine: traces of separate runs or machines as one", "vztrace combine"};
    app.set_help_flag("-h,--help", "Print this help and exit");
    app.add_option("traces", options.traces,
                   "The traces (vztrace's .pftrace, .json, .json.gz, VizTracer's JSON)")
        ->required()
        ->expected(2, -1)
        ->type_name("TRACE");
    app.add_option("-o,--output", options.output,
                   "The trace to write (.pftrace or .perfetto-trace); replaced once complete")
        ->required()
        ->type_name("OUT");
    app.add_option("--align", options.align,
                   "realtime: the clocks of the machines, as each trace recorded CLOCK_REALTIME "
                   "beside its own (vztrace's Perfetto traces do); start: each trace's first "
                   "call at the first trace's")
        ->check(CLI::IsMember({"realtime", "start"}))
        ->capture_default_str();
    app.footer(
        "Each process keeps its pid and names. Exit status: 0, 2 bad command line, 65 not a "
        "trace or damaged, 66 cannot be read, 71 out of memory, 74 the output cannot be written.");
    return parse(app, "combine", args);
}

int parse_view(std::span<const std::string> args, ViewOptions& options) {
    CLI::App app{"vztrace view: a trace in the browser, served from this machine", "vztrace view"};
    add_trace_arguments(app, options.trace);
    app.add_option("--port", options.port,
                   "The port on 127.0.0.1 (0: any free one). Default: a free one, 9001 for "
                   "--viewer perfetto (the only local port ui.perfetto.dev reads from)")
        ->check(CLI::Range(0, 65535))
        ->type_name("N");
    app.add_option("--viewer", options.viewer,
                   "speedscope: offline, served from here (the default when the build "
                   "installed it); perfetto: ui.perfetto.dev, which fetches the trace from here")
        ->check(CLI::IsMember({"perfetto", "speedscope"}))
        ->type_name("perfetto|speedscope");
    app.add_flag("--no-browser", options.no_browser, "Only print the addresses");
    app.footer(
        "Serves on 127.0.0.1 only, every address under a random token (anything else gets "
        "404), until Ctrl-C or SIGTERM; prints the addresses on stderr and opens the browser "
        "($BROWSER, else xdg-open in a graphical session) unless --no-browser.\nExit status: "
        "0 once stopped, 2 bad command line, the offline viewer not installed or the port "
        "taken, 65 not a trace or damaged, 66 cannot be read, 71 out of memory, 74 the "
        "converted trace cannot be written.");
    return parse(app, "view", args);
}

}  // namespace vztrace::launcher
