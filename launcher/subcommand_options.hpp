// The command lines of the subcommands that read traces (report, diff, export, combine,
// view), parsed in subcommand_options.cpp alone: CLI11 takes about ten seconds to compile
// in each file that includes it, and the subcommands' own files no longer do. No Python.h.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vztrace::launcher {

struct ReportOptions {
    std::string trace;
    std::string by = "all";
    std::string sort = "self";
    std::string format = "text";
    std::string match;
    std::size_t limit = 30;
};

struct DiffOptions {
    std::string base;
    std::string next;  // the trace after the change
    std::string sort = "self";
    std::string format = "text";
    std::string match;
    std::size_t limit = 30;
    double fail_over = -1;  // -1: not given
    bool fail_on_new_calls = false;
};

struct ExportOptions {
    std::string trace;
    std::string output;
};

struct CombineOptions {
    std::vector<std::string> traces;
    std::string output;
    std::string align = "realtime";
};

struct ViewOptions {
    std::string trace;
    std::string viewer;  // empty: the default
    std::optional<int> port;
    bool no_browser = false;
};

// Each parses what follows its subcommand's name into `options`: -1 to go on, else the
// status to exit with (0 after --help, which goes to stdout; ExitCode::kUsage after one
// line on stderr).
int parse_report(std::span<const std::string> args, ReportOptions& options);
int parse_diff(std::span<const std::string> args, DiffOptions& options);
int parse_export(std::span<const std::string> args, ExportOptions& options);
int parse_combine(std::span<const std::string> args, CombineOptions& options);
int parse_view(std::span<const std::string> args, ViewOptions& options);

// The formats export writes, by the output's extension (its help and its error name them).
inline constexpr std::string_view kExportFormats =
    ".pftrace, .perfetto-trace, .json, .json.gz, .speedscope.json, .folded, .pstats";

}  // namespace vztrace::launcher
