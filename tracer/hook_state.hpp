// State shared by the hook callbacks (internal to tracer/; includes Python.h).
#pragma once

#include <Python.h>

#include "tracer/session.hpp"

namespace vztrace::tracer::hooks {

// Set while events are recorded. Checked first in every callback (the cheapest test).
inline bool g_active = false;
inline Session* g_session = nullptr;
inline bool g_record_c_calls = true;

}  // namespace vztrace::tracer::hooks
