// 3.12+: sys.monitoring with METH_FASTCALL C callbacks (shared/DESIGN.md: +37 ns per call
// with rdtsc and a 16-byte store, against +105 ns for a C profile hook).
#pragma once

#include <Python.h>

#include <string>

namespace vztrace::tracer::monitoring {

// Claims a tool id (5 first; never 2, cProfile's) and turns on the events of Python frames
// and of C calls, as asked (none: the tool id is kept for take_over_python_frames).
// Returns false (nothing changed) when sys.monitoring is not ready yet. `hook` describes
// what was used. `detailed`: the callbacks that also record what --log-func-args,
// --log-func-retval, --log-exception ask (call_details.hpp), in place of the plain ones.
bool install(bool record_python, bool record_c_calls, bool detailed, std::string& hook);

// The frame hook gives way: Python frames are recorded from here on, except the ends of
// the frames the hook entered, which it records itself. False if it could not be done.
bool take_over_python_frames();
// Turns every event off (the program has ended).
void stop();

// A C call's C_RETURN (or C_RAISE, `raised`) that vztrace's callback will not get: a
// callback of the program's called before it (a profile function, tool 6; a tool above
// vztrace's) raised, and CPython calls no other. The call ends now, as on_c_exit would
// have ended it. Nothing on 3.11.
void c_exit_lost(PyObject* code, PyObject* callable, bool raised);

// vztrace's tool id; -1 when it has none (3.11, or every id taken). It changes when the
// program takes it (free_for_program).
int tool_id();

// The program names `tool` in a sys.monitoring call that takes it or sets something on it:
// if it is vztrace's, vztrace moves to another free id first, with every callback and event
// it had, so that the program finds it free, as under python. False, with a ValueError
// set, when no other id is free and `refuse_if_stuck`.
bool free_for_program(PyObject* tool, bool refuse_if_stuck);

}  // namespace vztrace::tracer::monitoring
