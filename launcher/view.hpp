// `vztrace view TRACE`: serves a trace to a browser from 127.0.0.1, under a random token,
// until SIGINT or SIGTERM. Two viewers: speedscope's static build (offline; fetched by the
// build from npm, cmake/VztraceSpeedscope.cmake), and ui.perfetto.dev, which fetches the
// trace from the local server. The server is launcher/view_server.hpp. No Python.h.
#pragma once

#include <span>
#include <string>

namespace vztrace::launcher {

// args: what follows "view". Returns 0 once interrupted, or the exit status (2 bad command
// line, no offline viewer, or no port to listen on; 65, 66 as report) after one line on
// stderr. Writes nothing to stdout: the addresses go to stderr.
int run_view(std::span<const std::string> args);

}  // namespace vztrace::launcher
