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

}  // namespace vztrace::tracer::hooks
