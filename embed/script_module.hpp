// The in-script `vztrace` module: what a program calls to mark its own trace (instants,
// counters, spans), to pause the recording, and to leave functions out or keep only some
// (@vztrace.ignore, @vztrace.sparse). It is a built-in module of every interpreter vztrace
// starts, traced or not; in a process that is not being recorded each call is a no-op.
// The same API in pure Python, doing nothing, is embed/python/vztrace.py. No Python.h.
#pragma once

namespace vztrace::embed {

// Adds `vztrace` to the interpreter's built-in modules. Call before it is initialised.
void register_script_module();

}  // namespace vztrace::embed
