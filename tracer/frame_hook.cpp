#include "tracer/frame_hook.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include "tracer/call_details.hpp"
#include "tracer/hook_state.hpp"
#include "tracer/monitoring_hooks.hpp"
#include "tracer/profile_hooks.hpp"
#include "tracer/python_symbols.hpp"

namespace vztrace::tracer::frame_hook {
namespace {

using hooks::g_active;
using hooks::g_session;
using hooks::t_frame_depth;

// Frames entered through the hook that may be open at once on a thread before it gives
// way. Each is a C call of about a kilobyte of stack, and one of CPython's C recursion
// limit on 3.12 (800): 150 leaves the program nearly all of both, and covers the stacks
// of most programs (a test under pytest runs 60 to 120 frames deep).
constexpr int kMaxDepth = 150;
constexpr const char* kTooDeep = "a thread ran 150 frames deep";
static_assert(kMaxDepth == 150, "kTooDeep names kMaxDepth");

bool g_live = false;
PyInterpreterState* g_interpreter = nullptr;

using SetEvalFrame = void (*)(PyInterpreterState*, _PyFrameEvalFunction);

// CPython's own setter: vztrace's definition below stands in for it for the program's
// extensions (see the end of this file).
SetEvalFrame real_setter() {
#ifdef VZTRACE_INTERPOSE_EVAL_FRAME
    static const auto setter =
        reinterpret_cast<SetEvalFrame>(::dlsym(RTLD_NEXT, "_PyInterpreterState_SetEvalFrameFunc"));
    return setter;
#else
    return &_PyInterpreterState_SetEvalFrameFunc;
#endif
}

constexpr int kGeneratorFlags = CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR;

#if PY_VERSION_HEX >= 0x030C0000

// The frame's code object, through the public accessor (a strong reference).
VZ_ALWAYS_INLINE PyCodeObject* code_of(_PyInterpreterFrame* frame) {
    return reinterpret_cast<PyCodeObject*>(PyUnstable_InterpreterFrame_GetCode(frame));
}
VZ_ALWAYS_INLINE void release(PyCodeObject* code) { Py_DECREF(code); }

// Whether the frame has not run yet. A generator's function runs only to make the
// generator, then returns it: sys.monitoring counts the call from its first resume, and
// so does the hook. 3.12 points a new frame before its first instruction, 3.13 at it.
VZ_ALWAYS_INLINE bool fresh(_PyInterpreterFrame* frame, PyCodeObject*) {
#if PY_VERSION_HEX >= 0x030D0000
    return PyUnstable_InterpreterFrame_GetLasti(frame) == 0;
#else
    return PyUnstable_InterpreterFrame_GetLasti(frame) < 0;
#endif
}

bool layout_ok(_PyInterpreterFrame*) { return true; }

#else  // 3.11: no accessor; the head of CPython's _PyInterpreterFrame (pycore_frame.h)

struct FrameHead {
    PyObject* f_func;
    PyObject* f_globals;
    PyObject* f_builtins;
    PyObject* f_locals;
    PyCodeObject* f_code;
    PyObject* frame_obj;
    void* previous;
    _Py_CODEUNIT* prev_instr;  // before the first instruction in a new frame
};

VZ_ALWAYS_INLINE PyCodeObject* code_of(_PyInterpreterFrame* frame) {
    PyCodeObject* code = reinterpret_cast<FrameHead*>(frame)->f_code;
    return Py_IS_TYPE(code, &PyCode_Type) ? code : nullptr;
}
VZ_ALWAYS_INLINE void release(PyCodeObject*) {}

VZ_ALWAYS_INLINE bool fresh(_PyInterpreterFrame* frame, PyCodeObject* code) {
    return reinterpret_cast<FrameHead*>(frame)->prev_instr == _PyCode_CODE(code) - 1;
}

// The layout is trusted once a frame's function holds the code the layout points at.
bool layout_ok(_PyInterpreterFrame* frame) {
    static int checked = 0;  // 1: good, -1: not
    if (VZ_LIKELY(checked == 1)) return true;
    if (checked == 0) {
        const auto* head = reinterpret_cast<FrameHead*>(frame);
        const bool good =
            head->f_func != nullptr && PyFunction_Check(head->f_func) &&
            PyFunction_GET_CODE(head->f_func) == reinterpret_cast<PyObject*>(head->f_code) &&
            PyCode_Check(head->f_code) && head->f_globals == PyFunction_GET_GLOBALS(head->f_func);
        checked = good ? 1 : -1;
    }
    return checked == 1;
}

#endif

// Whether a frame left by an exception never ran: CPython refused it at its entry, past
// the recursion limit, and sys.monitoring and the profile hook saw no call. The
// RecursionError raised there has no traceback yet; an exception the frame ran into has the
// frame's own entry in its traceback by the time the frame is left.
bool refused_at_entry(PyThreadState* thread) {
#if PY_VERSION_HEX >= 0x030C0000
    PyObject* exception = thread->current_exception;
    return exception != nullptr &&
           Py_IS_TYPE(exception, reinterpret_cast<PyTypeObject*>(PyExc_RecursionError)) &&
           reinterpret_cast<PyBaseExceptionObject*>(exception)->traceback == nullptr;
#else
    return thread->curexc_type == PyExc_RecursionError && thread->curexc_traceback == nullptr;
#endif
}

// A frame the hook lets run unrecorded. If the hook gives way meanwhile, the frame still
// returns through it (see hooks::t_hook_frame_returned).
PyObject* run_unrecorded(PyThreadState* thread, _PyInterpreterFrame* frame, int throwing,
                         const void* code) {
    PyObject* result = _PyEval_EvalFrameDefault(thread, frame, throwing);
    if (!g_live) hooks::t_hook_frame_returned = code;
    return result;
}

PyObject* evaluate(PyThreadState* thread, _PyInterpreterFrame* frame, int throwing) {
    if (VZ_UNLIKELY(!g_active || !g_live)) return _PyEval_EvalFrameDefault(thread, frame, throwing);
    // Under CPython's tracing guard: a profile or trace function of the program's, or a
    // sys.monitoring callback, and what they call. sys.monitoring and the profile hook send
    // no events there; recording them here made the counts depend on the mechanism.
    if (VZ_UNLIKELY(thread->tracing != 0)) {
        PyCodeObject* code = layout_ok(frame) ? code_of(frame) : nullptr;
        if (code != nullptr) release(code);
        return run_unrecorded(thread, frame, throwing, code);
    }
    if (VZ_UNLIKELY(!layout_ok(frame))) {
        give_way("the frames' layout is not the one this vztrace was built for");
        return _PyEval_EvalFrameDefault(thread, frame, throwing);
    }
    PyCodeObject* code = code_of(frame);
    if (VZ_UNLIKELY(code == nullptr)) {
        give_way("a frame without a code object");
        return _PyEval_EvalFrameDefault(thread, frame, throwing);
    }
    if (VZ_UNLIKELY((code->co_flags & kGeneratorFlags) != 0) && fresh(frame, code)) {
        release(code);
        return _PyEval_EvalFrameDefault(thread, frame, throwing);
    }
    const SymbolId id = symbols::of_code(reinterpret_cast<PyObject*>(code));
    release(code);
    if (VZ_UNLIKELY(id == kHiddenSymbol)) return run_unrecorded(thread, frame, throwing, code);
    if (VZ_UNLIKELY(t_frame_depth >= kMaxDepth)) {
        // This frame starts under the mechanism taking over, which records it.
        give_way(kTooDeep);
        return run_unrecorded(thread, frame, throwing, code);
    }
    ++t_frame_depth;
    const std::uint64_t start = TickClock::now();
    g_session->current_buffer().append(start, id, EventKind::kEnter);
#if PY_VERSION_HEX < 0x030C0000
    if (VZ_UNLIKELY(thread->c_profilefunc != nullptr))  // none under --ignore-c-function
        hooks::t_call_to_come = profile::sends_python_calls(thread) ? code : nullptr;
#endif
    PyObject* result = _PyEval_EvalFrameDefault(thread, frame, throwing);
    const std::uint64_t now = TickClock::now();
    --t_frame_depth;
#if PY_VERSION_HEX < 0x030C0000
    // A frame left before its 'call' (refused at its entry) leaves nothing to come.
    if (VZ_UNLIKELY(hooks::t_call_to_come != nullptr)) hooks::t_call_to_come = nullptr;
#endif
    // After the hook gave way, its frames still return through it (see hook_state.hpp).
    if (VZ_UNLIKELY(!g_live)) hooks::t_hook_frame_returned = code;
    // NULL: the frame was left by an exception.
    if (VZ_LIKELY(g_active)) {
        ThreadBuffer& buffer = g_session->current_buffer();
        if (VZ_UNLIKELY(result == nullptr) && refused_at_entry(thread) &&
            buffer.take_back_last(Record{start, id, EventKind::kEnter})) {
            return result;
        }
        buffer.append(now, id, result != nullptr ? EventKind::kExit : EventKind::kExitByException);
    }
    return result;
}

// Puts `mine` in the slot, where CPython's function (or vztrace's hook) is; false, with
// `why_not` set, where it cannot be, or where a change of the slot could not be noticed
// and vztrace is not `forced` (--hook frame).
bool claim_slot([[maybe_unused]] bool forced, _PyFrameEvalFunction mine, std::string& why_not) {
#ifndef VZTRACE_INTERPOSE_EVAL_FRAME
    if (!forced) {
        why_not =
            "libpython is linked statically, so a frame-evaluation function of the "
            "program's could not be noticed";
        return false;
    }
#endif
    PyInterpreterState* interpreter = PyInterpreterState_Get();
    const _PyFrameEvalFunction current = _PyInterpreterState_GetEvalFrameFunc(interpreter);
    if (current != &_PyEval_EvalFrameDefault && current != &evaluate) {
        why_not = "another frame-evaluation function is installed";
        return false;
    }
    if (real_setter() == nullptr) {
        why_not = "CPython's frame-evaluation setter was not found";
        return false;
    }
    g_interpreter = interpreter;
    real_setter()(interpreter, mine);
    return true;
}

#if PY_VERSION_HEX < 0x030C0000

// --log-exception on 3.11 (see frame_hook.hpp): the companion. It records no frame; it
// hands the exception of a frame left by one to details::add_exception, which gives it to
// the exit the profile hook has just recorded.
bool g_companion = false;

// Threads whose frames run past kMaxDepth companion frames (each is a C call): the slot
// holds CPython's function until none is, and the frames begun meanwhile run inline, as
// under python (their exits keep no exception text).
int g_companions_suspended = 0;

void set_slot(_PyFrameEvalFunction eval_frame) {
    if (g_interpreter != nullptr) real_setter()(g_interpreter, eval_frame);
}

PyObject* companion(PyThreadState* thread, _PyInterpreterFrame* frame, int throwing) {
    if (VZ_UNLIKELY(!g_companion)) return _PyEval_EvalFrameDefault(thread, frame, throwing);
    const bool deep = t_frame_depth >= kMaxDepth;
    if (VZ_UNLIKELY(deep) && g_companions_suspended++ == 0) set_slot(&_PyEval_EvalFrameDefault);
    ++t_frame_depth;
    PyObject* result = _PyEval_EvalFrameDefault(thread, frame, throwing);
    --t_frame_depth;
    if (VZ_UNLIKELY(deep) && --g_companions_suspended == 0 && g_companion) set_slot(&companion);
    if (result == nullptr && VZ_LIKELY(g_active) && layout_ok(frame)) {
        PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        details::add_exception(reinterpret_cast<PyObject*>(code_of(frame)), value, traceback);
        PyErr_Restore(type, value, traceback);
    }
    return result;
}

bool companion_in_slot() {
    return g_interpreter != nullptr &&
           _PyInterpreterState_GetEvalFrameFunc(g_interpreter) == &companion;
}

#endif

}  // namespace

#if PY_VERSION_HEX < 0x030C0000

bool install_companion(std::string& why_not) {
    if (!claim_slot(false, &companion, why_not)) return false;
    g_companion = true;
    return true;
}

bool companion_live() { return g_companion; }

void companion_gives_way(const char* reason) {
    if (!g_companion) return;
    g_companion = false;
    if (companion_in_slot()) set_slot(&_PyEval_EvalFrameDefault);
    g_session->info().hook += fmt::format("; then no exception texts ({})", reason);
}

#else

bool install_companion(std::string& why_not) {
    why_not = "sys.monitoring gives the exceptions";
    return false;
}
bool companion_live() { return false; }
void companion_gives_way(const char*) {}

#endif

namespace {

// The mechanism that takes Python frames over from the hook, and the metadata's word on it.
void hand_over(const char* reason) {
#if PY_VERSION_HEX >= 0x030C0000
    const bool taken = monitoring::take_over_python_frames();
    const std::string by = fmt::format("sys.monitoring (tool {})", monitoring::tool_id());
#else
    profile::set_python_frames(profile::PythonFrames::kAfterHook);
    profile::attach_all_threads();
    const bool taken = true;
    const std::string by = "PyEval_SetProfile";
#endif
    g_session->info().hook +=
        taken ? fmt::format("; then {} for Python frames ({})", by, reason)
              : fmt::format("; then no Python frames ({}, and {} could not take over)", reason, by);
}

}  // namespace

void give_way(const char* reason) noexcept {
    try {
        if (!g_live) {
            companion_gives_way(reason);
            return;
        }
        g_live = false;
        hand_over(reason);
    } catch (const std::bad_alloc&) {
        // It runs inside the hook or a call of the program's, where no exception may go:
        // the system refused memory (a limit on the address space), and recording stops.
        g_session->stop_for_memory();
    }
    if (g_interpreter != nullptr &&
        _PyInterpreterState_GetEvalFrameFunc(g_interpreter) == &evaluate) {
        real_setter()(g_interpreter, &_PyEval_EvalFrameDefault);
    }
}

#if PY_VERSION_HEX >= 0x030C0000
// The running interpreter's configuration (exported by libpython 3.12 and 3.13; declared
// in their internal headers only).
extern "C" const PyConfig* _Py_GetConfig(void);
#endif

bool install(bool forced, std::string& why_not) {
    if (!forced && *kMissesCalls != '\0') {
        why_not = kMissesCalls;
        return false;
    }
#if PY_VERSION_HEX >= 0x030C0000
    // Python's perf support (-X perf, PYTHONPERFSUPPORT; 3.13's -X perf_jit) puts its
    // trampoline in the slot as the interpreter starts, and refuses to share it: with the
    // hook there first, python stopped with a fatal error.
    if (const PyConfig* config = _Py_GetConfig(); config != nullptr && config->perf_profiling) {
        why_not = "python's perf support (-X perf) takes the frame-evaluation slot";
        return false;
    }
#endif
    if (!claim_slot(forced, &evaluate, why_not)) return false;
    g_live = true;
    return true;
}

bool live() { return g_live; }

void uninstall() {
#if PY_VERSION_HEX < 0x030C0000
    g_companion = false;
    if (companion_in_slot()) set_slot(&_PyEval_EvalFrameDefault);
#endif
    g_live = false;
    if (g_interpreter != nullptr &&
        _PyInterpreterState_GetEvalFrameFunc(g_interpreter) == &evaluate) {
        real_setter()(g_interpreter, &_PyEval_EvalFrameDefault);
    }
}

// Another frame-evaluation function is being installed (or the default put back): the hook
// gives way first, while the program's frames still come to it.
void slot_changes(PyInterpreterState* interpreter, _PyFrameEvalFunction eval_frame) {
    if ((g_live || companion_live()) && interpreter == g_interpreter && eval_frame != &evaluate) {
        give_way("the program installed its own frame-evaluation function");
    }
}

}  // namespace vztrace::tracer::frame_hook

#ifdef VZTRACE_INTERPOSE_EVAL_FRAME
// The program's extensions (and ctypes) find this definition before libpython's: vztrace's
// executable exports its symbols. vztrace learns of the change before it is made.
extern "C" [[gnu::visibility("default")]] void _PyInterpreterState_SetEvalFrameFunc(
    PyInterpreterState* interpreter, _PyFrameEvalFunction eval_frame) {
    vztrace::tracer::frame_hook::slot_changes(interpreter, eval_frame);
    vztrace::tracer::frame_hook::real_setter()(interpreter, eval_frame);
}
#endif
