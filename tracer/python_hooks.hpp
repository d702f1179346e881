// The tracer's entry points for embed/. No Python.h here.
//
// prepare_tracing() runs before the interpreter exists: it registers a C audit hook (the
// one public way to run code that early) and a Py_AtExit writer. The interpreter's first
// audit event then installs the hooks, before site, .pth files, sitecustomize and every
// user import, all of which are recorded under a "python start-up" slice.
#pragma once

#include <string>

#include "tracer/settings.hpp"

namespace vztrace::tracer {

void prepare_tracing(const TraceSettings& settings, std::string process_name);

// After initialisation, right before the program runs: ends the start-up slice and
// registers the exit handler that names live threads and stops recording.
void program_starts();

// False when a trace was due but could not be written (the reason is on stderr).
bool trace_written();

}  // namespace vztrace::tracer
