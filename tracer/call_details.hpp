// What --log-func-args, --log-func-retval and --log-exception add to a call: the repr of
// its arguments (named by the parameters), of its return value, and the type and message
// of the exception it ends by, as the arguments of its enter or exit record (events.hpp).
// Used only by the detailed callbacks (monitoring_hooks.cpp, profile_hooks.cpp), which
// are installed only when one of these options (or --log-audit) is on: the plain
// callbacks do none of this work. Includes Python.h; tracer/ only.
//
// A repr runs the program's code (a __repr__), which is not the program's own call: calls
// made while vztrace takes a repr are not recorded (t_busy), a repr that raises is recorded
// as `<repr failed: ExcType>` and its exception cleared (unless it is the program's: a
// KeyboardInterrupt, or a signal handler's that ran inside the repr, which is raised in the
// program at its next check), and the exception pending when vztrace began (a call ending
// by one) is kept as it was.
#pragma once

#include <Python.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tracer/events.hpp"
#include "tracer/settings.hpp"

namespace vztrace::tracer::details {

// Set while vztrace takes a repr on this thread: the detailed callbacks record nothing.
inline thread_local bool t_busy = false;

// Which details are recorded (set once, before recording starts).
struct Wanted {
    bool args = false;
    bool retval = false;
    bool exception = false;
};
inline Wanted g_wanted;

// Whether `settings` ask for the detailed callbacks.
bool wanted(const TraceSettings& settings);
void configure(const TraceSettings& settings);

// `text` cut to kMaxReprBytes bytes, ending with "..." when cut (never inside a UTF-8
// character).
std::string cut(std::string text);

// repr(object) (or str(object)), cut. Never raises; the pending exception is kept.
std::string repr_of(PyObject* object);
std::string str_of(PyObject* object);

// "TypeName: message" of an exception (just "TypeName" when str() is empty), cut.
std::string describe_exception(PyObject* exception);

// The arguments of the call `frame` begins, named by the parameters (co_varnames up to the
// positional, keyword-only, *args and **kwargs counts). Nothing when the frame's code is
// not `code`.
std::vector<events::Arg> call_args(PyFrameObject* frame, PyObject* code);

// Records the enter of `id` (the code object `code`, whose new frame is `frame`), with its
// arguments when asked and `frame` is given (null: a resume). The clock is read after the
// reprs, as the plain callbacks read it last.
void record_enter(SymbolId id, PyObject* code, PyFrameObject* frame);

// Records the exit of `id` at `now` (read before the reprs): a return with `value` (null:
// a yield, or unknown), or the end by `exception` (null: unknown).
void record_return(SymbolId id, std::uint64_t now, PyObject* value);
void record_unwind(SymbolId id, std::uint64_t now, PyObject* exception);

// Where CPython hides the exception from the callback that records an exit by one (a C
// function that raised: C_RAISE on 3.12+; any call on 3.11's profile hook), the exit is
// recorded without it and remembered, with the code object `site` it was left in. The next
// callback that sees the exception there (RAISE in the calling frame on 3.12+; the
// frame-evaluation companion on 3.11, see frame_hook.hpp) hands it to add_exception,
// which takes the exit back and records it again with the exception, at the same time.
// That happens only while the exit is still the thread's last record: anything recorded
// between them (a finalizer's call) leaves the exit as it was, so no call is ever moved.
void remember_exit(std::uint64_t ticks, SymbolId id, PyObject* site);
// `traceback`: the exception's, where it is not yet in it (3.11's error indicator).
void add_exception(PyObject* site, PyObject* exception, PyObject* traceback = nullptr);

// 3.11, with --log-exception: a C call that raised (the profile hook's C_EXCEPTION) in
// `frame`. Its exception is recognised by its traceback, whose newest entry is `frame` at
// the call's instruction: when the frame is left by it (add_exception, which then gives
// both exits their text), or at the frame's next call while the frame handles it
// (next_event_in_handler).
void remember_c_exit(std::uint64_t ticks, SymbolId id, PyFrameObject* frame);
inline thread_local bool t_c_exit_remembered = false;
// At a profile event (`what`, `arg`) of `frame`, while a C exit is remembered.
void next_event_in_handler(PyFrameObject* frame, int what, PyObject* arg);

}  // namespace vztrace::tracer::details
