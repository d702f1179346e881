// The frame hook: Python frames recorded through the interpreter's frame-evaluation
// function (PEP 523), which sees every frame start and end, and each generator and
// coroutine resume and suspension, for a fraction of the cost of sys.monitoring's events
// (3.12+) or of the profile hook (3.11). It sees no C calls: those stay with
// sys.monitoring or the profile hook.
//
// It gives way, for the rest of the run, to sys.monitoring (3.12+) or the profile hook
// (3.11) where it would not be exact:
// - another frame-evaluation function is installed (torch.compile's dynamo, a debugger):
//   the slot is a single one, and vztrace's would no longer see the frames;
// - a thread's frames entered through the hook run deep: each is a C call, where python's
//   own frames take none, so deep recursion would hit CPython's C recursion limit (800 on
//   3.12) or the C stack long before python's recursion limit.
// The frames the hook entered end through it, and it records their ends; the mechanism
// taking over records every other frame, so no call is lost or recorded twice. The trace's
// metadata says what ran.
//
// On 3.13 the hook is not exact at all, so auto never installs it there: once a call site
// of a class is warm, CPython calls the class's Python __init__ from a specialised
// instruction (CALL_ALLOC_AND_ENTER_INIT) that pushes its frame without the
// frame-evaluation function (2 of 100 calls seen in a loop on 3.13.0). --hook frame still
// installs it, for comparison, with kMissesCalls saying so.
#pragma once

#include <Python.h>

#include <string>

namespace vztrace::tracer::frame_hook {

// Installs the hook; false (with `why_not` set) when the slot holds another function, or
// when the hook is not `forced` (--hook frame) and would not be exact: a change of the
// slot could not be noticed, or this is 3.13.
bool install(bool forced, std::string& why_not);

// What the hook misses on this CPython even where nothing else is installed ("" where
// nothing): the metadata and the root's last lines say it when --hook frame forces it.
#if PY_VERSION_HEX >= 0x030D0000
inline constexpr const char* kMissesCalls =
    "CPython 3.13 calls a class's __init__ from a warm call site without the frame hook";
#else
inline constexpr const char* kMissesCalls = "";
#endif

// Hands Python frames over to sys.monitoring (3.12+) or the profile hook (3.11) for the
// rest of the run, because of `reason` (which the metadata gives). Also when the program
// turns on what would see the hook's presence: a trace function (sys.settrace: CPython
// calls a generator in a for loop inline, and reports its StopIteration, only without a
// frame-evaluation function), or sys.monitoring's STOP_ITERATION events.
void give_way(const char* reason) noexcept;  // the companion's too

// --log-exception on 3.11: CPython hides the exception of a frame left by one from the
// profile function, but a frame-evaluation function sees it, set, as the frame returns
// NULL. The companion is such a function: it records no frame (the profile hook records
// every call) and gives the profile hook's last exit its exception
// (details::add_exception). It gives way, for the rest of the run, as the hook does (a
// frame-evaluation function or a trace function of the program's); the exits after that
// keep no exception text, and the metadata says why. A thread's frames deeper than the
// hook's limit run inline, with CPython's own function in the slot until they end.
// False (with `why_not`) where it cannot be had, and always on 3.12+.
bool install_companion(std::string& why_not);
bool companion_live();

// Puts CPython's own function back (recording has ended, or could not begin); frames
// still open end through the hook, unrecorded.
void uninstall();

// Whether the hook records Python frames (installed, and has not given way).
bool live();

// Called before the interpreter's frame-evaluation function changes.
void slot_changes(PyInterpreterState* interpreter, _PyFrameEvalFunction eval_frame);

}  // namespace vztrace::tracer::frame_hook
