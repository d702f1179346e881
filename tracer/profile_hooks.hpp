// 3.11: a C profile function (PyEval_SetProfile) on every thread. Threads started later
// get it from the thread bootstrap wrapper (tracer/thread_hooks.cpp).
#pragma once

#include <Python.h>

namespace vztrace::tracer::profile {

// What the profile function does with Python frames: records them (the profile hook is
// the mechanism), leaves them to the frame hook (it is there for C calls), or records
// them after the frame hook has given way (see frame_hook.hpp).
enum class PythonFrames { kRecord, kIgnore, kAfterHook };
void set_python_frames(PythonFrames frames);

// The profile function that also records what --log-func-args, --log-func-retval and
// --log-exception ask (call_details.hpp), in place of the plain one. Before any attach.
void set_detailed(bool detailed);

// Sets the profile function on the calling thread.
void attach_current_thread();
// On every thread of the interpreter (3.11): a thread with a profile function of the
// program's (sys.setprofile's, cProfile's) keeps it, called from vztrace's.
void attach_all_threads();
// sys.setprofile(function) has set the program's function on a thread where vztrace's is
// not (3.11): CPython's trampoline for such functions is learnt.
void note_program_profile_set();
// Whether the profile function is in use: threads started from now on get it.
bool in_use();

// A thread of vztrace's that takes the GIL (the signal helper): it is not the program's,
// and gets no profile function.
inline thread_local bool t_vztrace_thread = false;
void detach_current_thread();

#if PY_VERSION_HEX < 0x030C0000
// Whether vztrace's profile function is `thread`'s (alone or with a C profiler's): the
// thread's Python calls each come to it as a 'call'.
bool sends_python_calls(PyThreadState* thread);
#endif

// Whether vztrace's profile function is the calling thread's (a C profiler of the
// program's, such as cProfile, may have replaced it).
bool attached_to_current_thread();

// sys.setprofile(function) on a thread where vztrace's profile function is attached: the
// program's function is called from vztrace's with exactly python's events, and both see
// every call (one slot per thread on 3.11). None removes it. Returns false, doing nothing,
// when vztrace's is not this thread's profile function.
bool chain_program_profile(PyObject* function);

// 3.11: at the first sight of cProfile's code, its C profiler (_lsprof.Profiler) is
// watched: an enabled one is called from vztrace's profile function instead of replacing
// it on its thread, and a disabled one gives vztrace's back.
void watch_c_profiler();

// The program's function chained on this thread (borrowed), or null.
PyObject* chained_program_profile();

}  // namespace vztrace::tracer::profile
