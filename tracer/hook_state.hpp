// State shared by the hook callbacks (internal to tracer/; includes Python.h).
#pragma once

#include <Python.h>

#include <vector>

#include "tracer/session.hpp"

namespace vztrace::tracer::hooks {

// Set while events are recorded. Checked first in every callback (the cheapest test).
inline bool g_active = false;
inline Session* g_session = nullptr;
inline bool g_record_c_calls = true;

// Frames the frame hook has entered and not yet left on this thread, and the calls the
// mechanism taking over has begun on it since the hook gave way (see frame_hook.hpp),
// innermost last.
inline thread_local int t_frame_depth = 0;
inline thread_local std::vector<SymbolId> t_fallback_calls;

// The code of the frame the frame hook entered that has just returned (or raised) on this
// thread after the hook gave way. CPython called it as it calls C functions, since the hook
// was in the slot then, and sends the program's tools a C return for it, which python,
// with no frame-evaluation function, does not: program_profilers.cpp drops that one.
inline thread_local const void* t_hook_frame_returned = nullptr;

// 3.11, the profile hook attached too (C calls with the frame hook): the code of the frame
// the hook has just begun on this thread, whose 'call' CPython sends at its first
// instruction, after the thread may have waited there for the GIL. When another thread made
// the hook give way meanwhile, the profile hook, taking Python frames over, began that
// frame a second time (13 runs of 20 of a thread's calls while another set a trace
// function). The next 'call' on the thread is that frame's.
inline thread_local const void* t_call_to_come = nullptr;

// After the frame hook gave way, an exit that the mechanism taking over sees: whether it is
// to be recorded. None of that mechanism's calls open while frames of the hook are: one of
// the hook's, which records its end itself. Else it ends the innermost call begun since,
// unless it is an exception's exit of another function: a call aborted at its first
// instruction (the program's trace function raised at 'call'), which CPython never said
// began, inside that call (it used the count of the call around it, whose end was then
// taken for one of the hook's and lost).
inline bool fallback_exit_recorded(SymbolId id, bool by_exception) {
    if (t_fallback_calls.empty()) return t_frame_depth == 0;
    if (t_fallback_calls.back() == id || !by_exception) t_fallback_calls.pop_back();
    return true;
}

// The calling thread's thread state, or null (never a fatal error, as PyThreadState_Get's).
inline PyThreadState* current_thread_state() {
#if PY_VERSION_HEX >= 0x030D0000
    return PyThreadState_GetUnchecked();
#else
    return _PyThreadState_UncheckedGet();
#endif
}

// Whether the calling thread runs the main interpreter's code: vztrace's hooks are that
// interpreter's, and a runtime-wide callback (an audit hook) also sees the others'. False
// with no thread state at all.
inline bool in_main_interpreter() {
    PyThreadState* thread = current_thread_state();
    return thread != nullptr && PyThreadState_GetInterpreter(thread) == PyInterpreterState_Main();
}

}  // namespace vztrace::tracer::hooks
