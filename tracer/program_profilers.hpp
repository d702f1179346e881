// The program's own profilers and sys.monitoring tools see exactly the events python gives
// them. One event would differ: while vztrace records C calls, every call site is
// instrumented for CALL, so when the program turns a tool on (sys.setprofile,
// threading.setprofile, sys.monitoring.set_events / set_local_events / register_callback,
// cProfile's enable) CPython hands the new tool the C_RETURN of that very call, which under
// python (the site not instrumented when the call began) it never sees. profile.Profile
// asserts on it ("Bad return").
//
// vztrace stands between those functions and the tool: the callable the program registers
// for C returns (or as its profile function) is called through a small forwarder that
// drops that one event, on the thread that made the call, when python would not have sent
// it (no other tool had the site instrumented). sys.getprofile() and register_callback()
// still answer with the program's own callables.
#pragma once

#include <Python.h>

namespace vztrace::tracer::program_profilers {

// The program's own callable behind vztrace's forwarder, or `callable` itself (a new
// reference either way; null for null).
PyObject* program_callable(PyObject* callable);

// With the GIL held, once the hooks are in (sys and, on 3.12+, sys.monitoring exist).
void install();

}  // namespace vztrace::tracer::program_profilers
