// 3.11: a C profile function (PyEval_SetProfile) on every thread. Threads started later
// get it from the thread bootstrap wrapper (tracer/thread_hooks.cpp).
#pragma once

#include <Python.h>

namespace vztrace::tracer::profile {

// Sets the profile function on the calling thread.
void attach_current_thread();
void detach_current_thread();

}  // namespace vztrace::tracer::profile
