// `vztrace export TRACE -o OUT`: a trace in another format, chosen by OUT's extension:
// Chrome JSON (.json, .json.gz), speedscope (.speedscope.json), collapsed stacks
// (.folded), pstats (.pstats). Reads every trace format vztrace knows. No Python.h.
#pragma once

#include <span>
#include <string>

namespace vztrace::launcher {

// args: what follows "export". Returns the exit status (see report.hpp).
int run_export(std::span<const std::string> args);

// `vztrace combine A B ... -o OUT`: traces of separate runs or machines as one Perfetto
// trace, their times lined up by CLOCK_REALTIME or by their starts.
int run_combine(std::span<const std::string> args);

}  // namespace vztrace::launcher
