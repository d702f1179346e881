// The subcommands that read traces after the run. `vztrace report TRACE`: where the time
// went, as a table of functions by self and total time. `vztrace diff BASE NEW`: what
// changed between two traces, with exit statuses for CI gating. Both in a terminal, as
// markdown or as JSON; both read every trace format vztrace knows
// (tracer/format/call_reader.hpp). No Python.h.
#pragma once

#include <span>
#include <string>

namespace vztrace::launcher {

// args: what follows "report". Writes the report to stdout; returns the exit status
// (0, or ExitCode::kUsage, kBadTrace, kNoTrace after one line on stderr).
int run_report(std::span<const std::string> args);

// args: what follows "diff". Returns 0, kRegressed (time past --fail-over), kNewCalls
// (--fail-on-new-calls), or an error status as run_report.
int run_diff(std::span<const std::string> args);

}  // namespace vztrace::launcher
