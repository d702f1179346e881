// `vztrace report TRACE`: where the time went, as a table of functions by self and total
// time, in a terminal, as markdown or as JSON. Reads every trace format vztrace knows
// (tracer/format/call_reader.hpp). No Python.h.
#pragma once

#include <span>
#include <string>

namespace vztrace::launcher {

// args: what follows "report". Writes the report to stdout; returns the exit status
// (0, or ExitCode::kUsage, kBadTrace, kNoTrace after one line on stderr).
int run_report(std::span<const std::string> args);

}  // namespace vztrace::launcher
