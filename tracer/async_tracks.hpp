// --log-async: each asyncio Task on a track of its own, named by the task and its
// coroutine ("Task-1 (main)"; a name already taken by another task gets " #2", " #3"...),
// with a slice "running" for each step of the task; the gaps between are the task waiting.
//
// A step is what the event loop runs through asyncio.events.Handle._run (Python code in
// 3.11 to 3.13, whatever the Task's implementation: the C _asyncio one steps through a
// callback whose __self__ is the Task). Handle._run is replaced by a C function that
// calls it, and opens and closes the slice when the handle's callback belongs to a Task.
// The first step of an eager task (3.12+ eager_task_factory) runs in the task's creation,
// not through the loop, and is not shown. Includes Python.h; tracer/ only.
#pragma once

#include <Python.h>

namespace vztrace::tracer::async_tracks {

// Replaces Handle._run once asyncio.events is loaded; true once done (or impossible).
bool install_when_loaded();

}  // namespace vztrace::tracer::async_tracks
