// State shared by the hook callbacks (internal to tracer/; includes Python.h).
#pragma once

#include <Python.h>

#include "tracer/session.hpp"

namespace vztrace::tracer::hooks {

// Set while events are recorded. Checked first in every callback (the cheapest test).
inline bool g_active = false;
inline Session* g_session = nullptr;
inline bool g_record_c_calls = true;

// Frames the frame hook has entered and not yet left on this thread, and frames entered
// since the hook gave way (see frame_hook.hpp).
inline thread_local int t_frame_depth = 0;
inline thread_local int t_fallback_depth = 0;

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
