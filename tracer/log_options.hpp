// --log-gc, --log-print, --log-audit and --log-async: what the interpreter does besides
// calls, recorded on the thread it happens on (events.hpp). Each is set up only when its
// option is on, through an audit hook of its own: the call hooks are not touched. Includes
// Python.h; tracer/ only.
//
// - --log-gc: a C function in gc.callbacks; each collection is a slice "gc" with the
//   arguments generation, then collected and uncollectable.
// - --log-print: builtins.print is a C function that calls python's print with the same
//   arguments, the file (given, or sys.stdout) wrapped so that what print writes is also
//   kept; then an instant "print" with the text (cut as a repr). The program's output is
//   byte for byte python's, and each __str__ runs once, by python's print.
// - --log-audit: an instant named by each audit event (all, or those asked), with the
//   repr of its arguments.
// - --log-async: see async_tracks.hpp.
#pragma once

#include <Python.h>

#include "tracer/settings.hpp"

namespace vztrace::tracer::log_options {

// Before the interpreter exists: registers the audit hook when one of these options is on.
// It sets each up once the recording has begun and the interpreter can (gc, builtins).
void prepare(const TraceSettings& settings);

// Right before the program runs: sets up what could not be set up earlier.
void program_starts();

}  // namespace vztrace::tracer::log_options
