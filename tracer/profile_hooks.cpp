#include "tracer/profile_hooks.hpp"

#include <dlfcn.h>
#include <frameobject.h>
#if PY_VERSION_HEX < 0x030C0000
#include <opcode.h>
#endif

#include <algorithm>
#include <array>
#include <new>
#include <unordered_map>
#include <vector>

#include "tracer/call_details.hpp"
#include "tracer/hook_state.hpp"
#include "tracer/program_profilers.hpp"
#include "tracer/python_symbols.hpp"

namespace vztrace::tracer::profile {
namespace {

using hooks::g_active;
using hooks::g_session;

// The program's own profile function on this thread (a strong reference), and whether its
// next event is the C return of the sys.setprofile call that installed it, which python
// never sends (the call began with no profile function).
thread_local PyObject* t_program_profile = nullptr;
thread_local bool t_drop_pending = false;
thread_local PyFrameObject* t_drop_frame = nullptr;  // compared, never used
std::array<PyObject*, 8> g_event_names{};            // indexed by PyTrace_*, as CPython names them
PythonFrames g_python_frames = PythonFrames::kRecord;
bool g_in_use = false;  // set on some thread; new threads get it too

// The event names a program's profile function is called with, made before it first is.
void name_events() {
    if (g_event_names[0] != nullptr) return;
    const char* names[] = {"call",   "exception",   "line",     "return",
                           "c_call", "c_exception", "c_return", "opcode"};
    for (std::size_t i = 0; i < g_event_names.size(); ++i) {
        g_event_names[i] = PyUnicode_InternFromString(names[i]);
    }
}

// 3.11 resumes the generators waiting in a `yield from` (or `await`) chain with no 'call'
// when an exception thrown into the chain (gen.throw(), asyncio's cancellation of a task)
// ends the innermost one: _gen_throw moves each waiting frame past its RESUME, where 3.11
// sends 'call', and resumes it. Its 'return' then came with no 'call': the calls it made
// nested under the call before it, and an outer call of the same function ended early.
// The thread's running generator frames, as the profile function saw them begin; when one
// returns (not at a yield, not by an exception, which the generator below is resumed with,
// 'call' and all) with a generator frame below it that is running but not among them, that
// one is being resumed so, and its begin is recorded then. The innermost one,
// resumed so when what it awaits is no generator (an asyncio future), is seen at its end:
// its begin is recorded there, after the calls it made.
#if PY_VERSION_HEX < 0x030C0000
thread_local std::vector<PyFrameObject*> t_running_generators;  // compared, never used

constexpr int kGeneratorFlags = CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR;
constexpr std::int8_t kFrameExecuting = 0;  // 3.11's FRAME_EXECUTING (pycore_frame.h)

bool generator_executing(PyFrameObject* frame) {
    PyObject* generator = PyFrame_GetGenerator(frame);  // strong reference, or null
    if (generator == nullptr) return false;
    // Generators, coroutines and async generators share this head (cpython/genobject.h).
    const bool executing =
        reinterpret_cast<PyGenObject*>(generator)->gi_frame_state == kFrameExecuting;
    Py_DECREF(generator);
    return executing;
}

// Takes a generator frame that ends (returns, yields or raises) off the running ones;
// false when it was not among them: it was resumed unseen (the innermost of a chain whose
// awaited object is no generator, an asyncio future: what 3.11 resumes there is that
// generator itself).
[[gnu::noinline]] bool take_running(PyFrameObject* frame) {
    std::vector<PyFrameObject*>& running = t_running_generators;
    for (std::size_t at = running.size(); at-- > 0;) {
        if (running[at] == frame) {
            running.resize(at);
            return true;
        }
    }
    return false;
}

// After a generator frame's end: the generator frame below it, if it is being resumed
// unseen, begins now.
[[gnu::noinline]] void resume_waiting_below(PyFrameObject* frame) {
    // At a yield the generator is suspended already; at a return or an exception it is
    // still executing.
    if (!generator_executing(frame)) return;
    PyFrameObject* below = PyFrame_GetBack(frame);  // strong reference, or null
    if (below == nullptr) return;
    std::vector<PyFrameObject*>& running = t_running_generators;
    PyCodeObject* code = PyFrame_GetCode(below);  // strong reference
    if ((code->co_flags & kGeneratorFlags) != 0 && generator_executing(below) &&
        std::find(running.begin(), running.end(), below) == running.end()) {
        running.push_back(below);
        const SymbolId id = symbols::of_code(reinterpret_cast<PyObject*>(code));
        if (id != kHiddenSymbol) {
            g_session->current_buffer().append(TickClock::now(), id, EventKind::kEnter);
        }
    }
    Py_DECREF(code);
    Py_DECREF(below);
}

// Whether a frame of `code` is one of those kept: a generator's, coroutine's or async
// generator's, while the profile function records Python frames.
VZ_ALWAYS_INLINE bool is_running_generator(PyCodeObject* code) {
    return (code->co_flags & kGeneratorFlags) != 0 && g_python_frames == PythonFrames::kRecord;
}
#endif

VZ_ALWAYS_INLINE SymbolId symbol_of_frame(PyFrameObject* frame) {
    PyCodeObject* code = PyFrame_GetCode(frame);  // strong reference
    const SymbolId id = symbols::of_code(reinterpret_cast<PyObject*>(code));
    Py_DECREF(code);
    return id;
}

// As CPython's own profile trampoline: the frame's locals are synchronised around the
// call, and a function that raises is removed and its exception goes on. From 3.11.4 the
// traceback gets no entry of the frame's here (CPython adds it when it unwinds a started
// frame); before, the trampoline added one too, and the program's traceback named the
// frame twice under python (gh-102818): under vztrace it does the same.
[[gnu::noinline]] int call_program_profile(PyFrameObject* frame, int what, PyObject* arg) {
    if (t_drop_pending) {
        t_drop_pending = false;
        if ((what == PyTrace_C_RETURN || what == PyTrace_C_EXCEPTION) && frame == t_drop_frame) {
            return 0;
        }
    }
    if (PyFrame_FastToLocalsWithError(frame) < 0) return -1;
    PyObject* function = Py_NewRef(t_program_profile);
    PyObject* args[3] = {reinterpret_cast<PyObject*>(frame), g_event_names[what],
                         arg != nullptr ? arg : Py_None};
    PyObject* result = PyObject_Vectorcall(function, args, 3, nullptr);
    Py_DECREF(function);
    PyFrame_LocalsToFast(frame, 1);
    if (result == nullptr) {
        Py_CLEAR(t_program_profile);
        if (Py_Version < 0x030B0400) PyTraceBack_Here(frame);  // the running libpython's
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

void record(PyFrameObject* frame, int what, PyObject* arg);

// The symbol of the C function a C_CALL, C_RETURN or C_EXCEPTION is about, or kHiddenSymbol
// when it is not recorded: C calls off, not a C callable, or a caller that is hidden.
VZ_ALWAYS_INLINE SymbolId c_call_symbol(PyFrameObject* frame, PyObject* arg) {
    if (!hooks::g_record_c_calls || !symbols::is_c_callable(arg)) return kHiddenSymbol;
    if (symbol_of_frame(frame) == kHiddenSymbol) return kHiddenSymbol;
    return symbols::of_c_callable(arg);
}

// The program's profile function raised at a C call's start: CPython calls no C function
// and sends no C_EXCEPTION, but vztrace has begun the call (it records first). It ends now.
[[gnu::noinline]] int call_program_profile_at(PyFrameObject* frame, int what, PyObject* arg) {
    const int status = call_program_profile(frame, what, arg);
    if (status < 0 && what == PyTrace_C_CALL && g_active) record(frame, PyTrace_C_EXCEPTION, arg);
    return status;
}

// No exception may reach CPython: out of memory (a limit on the address space), the
// recording stops there.
int on_event(PyObject*, PyFrameObject* frame, int what, PyObject* arg) {
    try {
        if (VZ_LIKELY(g_active)) record(frame, what, arg);
    } catch (const std::bad_alloc&) {
        g_session->stop_for_memory();
    }
    if (VZ_UNLIKELY(t_program_profile != nullptr)) return call_program_profile_at(frame, what, arg);
    return 0;
}

VZ_ALWAYS_INLINE void record(PyFrameObject* frame, int what, PyObject* arg) {
    switch (what) {
        case PyTrace_CALL: {
            if (VZ_UNLIKELY(hooks::t_call_to_come != nullptr)) {
                // The next 'call' on the thread is that of the frame the hook has just
                // begun (see hook_state.hpp), which it may take for the hook's.
                PyCodeObject* code = PyFrame_GetCode(frame);  // strong reference
                const bool begun = hooks::t_call_to_come == code;
#if PY_VERSION_HEX < 0x030C0000
                if (begun && is_running_generator(code)) t_running_generators.push_back(frame);
#endif
                Py_DECREF(code);
                hooks::t_call_to_come = nullptr;
                if (begun) break;
            }
            if (g_python_frames == PythonFrames::kIgnore) break;
            // symbol_of_frame's work, written out here and at RETURN: through a helper that
            // also gave the generator flag, fib(22) took 0.3-0.4 M instructions more of this
            // function (callgrind, 3.11.7; 20.66 M), 2-4 an event.
            PyCodeObject* code = PyFrame_GetCode(frame);  // strong reference
#if PY_VERSION_HEX < 0x030C0000
            if (VZ_UNLIKELY(is_running_generator(code))) t_running_generators.push_back(frame);
#endif
            const SymbolId id = symbols::of_code(reinterpret_cast<PyObject*>(code));
            Py_DECREF(code);
            if (id == kHiddenSymbol) break;
            if (g_python_frames == PythonFrames::kAfterHook) hooks::t_fallback_calls.push_back(id);
            g_session->current_buffer().append(TickClock::now(), id, EventKind::kEnter);
            break;
        }
        case PyTrace_RETURN: {
            if (g_python_frames == PythonFrames::kIgnore) break;
            const std::uint64_t now = TickClock::now();
            PyCodeObject* code = PyFrame_GetCode(frame);  // strong reference
            const SymbolId id = symbols::of_code(reinterpret_cast<PyObject*>(code));
#if PY_VERSION_HEX < 0x030C0000
            const bool generator = VZ_UNLIKELY(is_running_generator(code));
#endif
            Py_DECREF(code);
            // A frame the hook entered: it records the end itself (as on 3.12+, see
            // monitoring_hooks.cpp).
            if (id != kHiddenSymbol && g_python_frames == PythonFrames::kAfterHook &&
                !hooks::fallback_exit_recorded(id, arg == nullptr)) {
                break;
            }
#if PY_VERSION_HEX < 0x030C0000
            // Resumed unseen: it began no later than now (its calls are before it).
            if (generator && !take_running(frame) && id != kHiddenSymbol) {
                g_session->current_buffer().append(now, id, EventKind::kEnter);
            }
#endif
            // arg is NULL when the frame is left by an exception.
            if (id != kHiddenSymbol) {
                g_session->current_buffer().append(
                    now, id, arg == nullptr ? EventKind::kExitByException : EventKind::kExit);
            }
#if PY_VERSION_HEX < 0x030C0000
            // One left by an exception: the generator below is resumed with it, and 3.11
            // sends its 'call' then.
            if (generator && arg != nullptr) resume_waiting_below(frame);
#endif
            break;
        }
        case PyTrace_C_CALL: {
            const SymbolId id = c_call_symbol(frame, arg);
            if (id == kHiddenSymbol) break;
            g_session->current_buffer().append(TickClock::now(), id, EventKind::kEnter);
            break;
        }
        case PyTrace_C_RETURN:
        case PyTrace_C_EXCEPTION: {
            const std::uint64_t now = TickClock::now();
            const SymbolId id = c_call_symbol(frame, arg);
            if (id == kHiddenSymbol) break;
            g_session->current_buffer().append(
                now, id, what == PyTrace_C_RETURN ? EventKind::kExit : EventKind::kExitByException);
            break;
        }
        default:
            break;
    }
}

// --log-func-args, --log-func-retval, --log-exception, --log-audit (call_details.hpp):
// this profile function takes the place of on_event. The profile function is called at
// each start and resume of a generator or coroutine, and at each return and yield: the
// arguments are taken at the first start only (the frame is at its first RESUME) and the
// value at a return only (not at a YIELD_VALUE). CPython hides the exception of a frame
// left by one from the profile function: the companion gives it (frame_hook.hpp).
bool at_first_start(PyFrameObject* frame, PyCodeObject* code) {
#if PY_VERSION_HEX < 0x030C0000
    if ((code->co_flags & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR)) == 0) return true;
    const int offset = PyFrame_GetLasti(frame);
    PyObject* bytes = PyCode_GetCode(code);
    const bool first = bytes != nullptr && offset >= 0 && offset + 1 < PyBytes_GET_SIZE(bytes) &&
                       static_cast<unsigned char>(PyBytes_AS_STRING(bytes)[offset]) == RESUME &&
                       PyBytes_AS_STRING(bytes)[offset + 1] == 0;
    Py_XDECREF(bytes);
    PyErr_Clear();
    return first;
#else
    (void)frame;
    (void)code;
    return true;
#endif
}

bool at_yield(PyFrameObject* frame, PyCodeObject* code) {
#if PY_VERSION_HEX < 0x030C0000
    if ((code->co_flags & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR)) == 0) return false;
    const int offset = PyFrame_GetLasti(frame);
    PyObject* bytes = PyCode_GetCode(code);
    const bool yield = bytes != nullptr && offset >= 0 && offset < PyBytes_GET_SIZE(bytes) &&
                       static_cast<unsigned char>(PyBytes_AS_STRING(bytes)[offset]) == YIELD_VALUE;
    Py_XDECREF(bytes);
    PyErr_Clear();
    return yield;
#else
    (void)frame;
    (void)code;
    return false;
#endif
}

void record_detailed(PyFrameObject* frame, int what, PyObject* arg) {
    if (VZ_UNLIKELY(details::t_c_exit_remembered)) details::next_event_in_handler(frame, what, arg);
    if (what == PyTrace_C_EXCEPTION && details::g_wanted.exception) {
        // The exception is hidden here: see details::remember_c_exit.
        const std::uint64_t now = TickClock::now();
        const SymbolId id = c_call_symbol(frame, arg);
        if (id != kHiddenSymbol) details::remember_c_exit(now, id, frame);
        return;
    }
    if (g_python_frames != PythonFrames::kRecord ||
        (what != PyTrace_CALL && what != PyTrace_RETURN)) {
        record(frame, what, arg);
        return;
    }
    const std::uint64_t now = TickClock::now();
    PyCodeObject* code = PyFrame_GetCode(frame);  // strong reference
    const SymbolId id = symbols::of_code(reinterpret_cast<PyObject*>(code));
    if (id != kHiddenSymbol && what == PyTrace_CALL) {
        details::record_enter(id, reinterpret_cast<PyObject*>(code),
                              at_first_start(frame, code) ? frame : nullptr);
    } else if (id != kHiddenSymbol && arg == nullptr) {
        // The exception is hidden here: the companion gives it (frame_hook.hpp).
        details::remember_exit(now, id, reinterpret_cast<PyObject*>(code));
    } else if (id != kHiddenSymbol) {
        details::record_return(id, now, at_yield(frame, code) ? nullptr : arg);
    }
    Py_DECREF(code);
}

int on_event_detailed(PyObject*, PyFrameObject* frame, int what, PyObject* arg) {
    try {
        if (VZ_LIKELY(g_active) && !details::t_busy) record_detailed(frame, what, arg);
    } catch (const std::bad_alloc&) {
        g_session->stop_for_memory();
    }
    if (VZ_UNLIKELY(t_program_profile != nullptr)) return call_program_profile_at(frame, what, arg);
    return 0;
}

Py_tracefunc g_function = on_event;

}  // namespace

void set_detailed(bool detailed) { g_function = detailed ? on_event_detailed : on_event; }

namespace {

// PyEval_SetProfile(function, NULL) on `thread`, without the "sys.setprofile" audit event
// that CPython raises there: vztrace's own hook is no event of the program's (its audit
// hooks saw one per thread, and one that refuses it left the thread unrecorded). The
// steps of 3.11's _PyEval_SetProfile, less the audit; the fields are public in 3.11's
// cpython/pystate.h.
void set_profile_quietly(PyThreadState* thread, Py_tracefunc function) {
#if PY_VERSION_HEX < 0x030C0000
    const auto update_tracing = [thread] {
        const bool on = thread->tracing == 0 &&
                        (thread->c_tracefunc != nullptr || thread->c_profilefunc != nullptr);
        thread->cframe->use_tracing = on ? 255 : 0;
    };
    PyObject* previous = thread->c_profileobj;
    thread->c_profilefunc = nullptr;
    thread->c_profileobj = nullptr;
    update_tracing();  // not left on while `previous` may run code as it is freed
    Py_XDECREF(previous);
    thread->c_profilefunc = function;
    update_tracing();
#else
    (void)thread;  // 3.12+ records through sys.monitoring: only the current thread comes here
    PyEval_SetProfile(function, nullptr);
#endif
}

}  // namespace

void attach_current_thread() {
    g_in_use = true;
    set_profile_quietly(PyThreadState_Get(), g_function);
}

bool in_use() { return g_in_use; }

void set_python_frames(PythonFrames frames) { g_python_frames = frames; }

#if PY_VERSION_HEX >= 0x030C0000
void attach_all_threads() {}
void note_program_profile_set() {}
#endif

void detach_current_thread() { set_profile_quietly(PyThreadState_Get(), nullptr); }

bool attached_to_current_thread() { return PyThreadState_Get()->c_profilefunc == g_function; }

#if PY_VERSION_HEX < 0x030C0000
namespace {

// A C profiler of the program's (cProfile's _lsprof.Profiler) sets its own profile function
// on its thread with PyEval_SetProfile, which replaced vztrace's there: nothing more was
// recorded on that thread, after its disable() too. Its enable() and disable() are watched:
// once enabled, its function is called from vztrace's, with the same events and its own
// object (sys.getprofile() still gives the profiler, as under python); once disabled,
// vztrace's is back.
thread_local Py_tracefunc t_c_profiler = nullptr;

int on_event_with_c_profiler(PyObject* object, PyFrameObject* frame, int what, PyObject* arg) {
    const int mine = g_function(nullptr, frame, what, arg);
    const Py_tracefunc theirs = t_c_profiler;
    const int result = theirs != nullptr ? theirs(object, frame, what, arg) : 0;
    return mine != 0 ? mine : result;
}

// CPython's trampoline for a function set with sys.setprofile (static in sysmodule.c),
// learnt when the program sets one while vztrace's is not on its thread.
Py_tracefunc g_trampoline = nullptr;

// Profile functions of the program's found on other threads when vztrace attaches to every
// thread: each thread takes its own into its thread-locals at its next event (under the
// GIL, as every profile event).
std::unordered_map<PyThreadState*, Py_tracefunc> g_found;

// A thread's first event after vztrace attached over a profile function of the program's:
// a sys.setprofile function is chained as if set under vztrace's (call_program_profile,
// which removes only the program's function when it raises), a C profiler (cProfile's,
// another tool's) as an enabled cProfile is.
int on_event_adopting(PyObject* object, PyFrameObject* frame, int what, PyObject* arg) {
    PyThreadState* thread = PyThreadState_Get();
    Py_tracefunc theirs = nullptr;
    if (const auto found = g_found.find(thread); found != g_found.end()) {
        theirs = found->second;
        g_found.erase(found);
    }
    if (theirs != nullptr && theirs != g_trampoline) {
        t_c_profiler = theirs;
        thread->c_profilefunc = on_event_with_c_profiler;  // its object stays the profiler
        return on_event_with_c_profiler(object, frame, what, arg);
    }
    if (theirs != nullptr && object != nullptr) {
        name_events();
        PyObject* previous = t_program_profile;
        t_program_profile = program_profilers::program_callable(object);
        Py_XDECREF(previous);
    }
    set_profile_quietly(thread, g_function);  // releases the thread's reference to `object`
    return g_function(nullptr, frame, what, arg);
}

PyObject* g_original_enable = nullptr;
PyObject* g_original_disable = nullptr;
PyMethodDef g_enable_def{};
PyMethodDef g_disable_def{};

PyObject* call_original(PyObject* original, PyObject* self, PyObject* const* args,
                        std::size_t nargs, PyObject* kwnames) {
    const std::size_t total = nargs + (kwnames != nullptr ? PyTuple_GET_SIZE(kwnames) : 0);
    std::vector<PyObject*> stack(total + 1);
    stack[0] = self;
    for (std::size_t i = 0; i < total; ++i) stack[i + 1] = args[i];
    return PyObject_Vectorcall(original, stack.data(), nargs + 1, kwnames);
}

PyObject* enable_watched(PyObject* self, PyObject* const* args, Py_ssize_t nargsf,
                         PyObject* kwnames) {
    PyThreadState* thread = PyThreadState_Get();
    const bool ours = thread->c_profilefunc == g_function;
    PyObject* result = call_original(g_original_enable, self, args,
                                     static_cast<std::size_t>(PyVectorcall_NARGS(nargsf)), kwnames);
    const Py_tracefunc now = thread->c_profilefunc;
    if (result != nullptr && ours && now != nullptr && now != g_function) {
        t_c_profiler = now;
        thread->c_profilefunc = on_event_with_c_profiler;  // its object stays the profiler
    }
    return result;
}

PyObject* disable_watched(PyObject* self, PyObject* const* args, Py_ssize_t nargsf,
                          PyObject* kwnames) {
    PyThreadState* thread = PyThreadState_Get();
    const bool ours =
        thread->c_profilefunc == g_function || thread->c_profilefunc == on_event_with_c_profiler;
    PyObject* result = call_original(g_original_disable, self, args,
                                     static_cast<std::size_t>(PyVectorcall_NARGS(nargsf)), kwnames);
    if (ours && thread->c_profilefunc == nullptr) {
        // As under python, the profiler's disable() leaves the thread with no profile
        // function of the program's (a chained sys.setprofile one included).
        t_c_profiler = nullptr;
        PyObject* program = t_program_profile;
        t_program_profile = nullptr;
        Py_XDECREF(program);
        if (g_active) set_profile_quietly(thread, g_function);
    }
    return result;
}

// `name` of the type's dict replaced by `def`, calling `original` (kept).
bool watch_method(PyTypeObject* type, const char* name, PyMethodDef& def,
                  _PyCFunctionFastWithKeywords function, PyObject*& original) {
    PyObject* found = PyDict_GetItemString(type->tp_dict, name);  // borrowed
    if (found == nullptr || !Py_IS_TYPE(found, &PyMethodDescr_Type)) return false;
    def.ml_name = name;
    def.ml_meth = reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(function));
    def.ml_flags = METH_FASTCALL | METH_KEYWORDS;
    def.ml_doc = reinterpret_cast<PyMethodDescrObject*>(found)->d_method->ml_doc;
    PyObject* watched = PyDescr_NewMethod(type, &def);
    if (watched == nullptr) return false;
    original = Py_NewRef(found);
    const bool set = PyDict_SetItemString(type->tp_dict, name, watched) == 0;
    Py_DECREF(watched);
    return set;
}

}  // namespace

void attach_all_threads() {
    g_in_use = true;
    watch_c_profiler();  // imported before vztrace's profile function was in use
    PyThreadState* current = PyThreadState_Get();
    for (PyThreadState* thread = PyInterpreterState_ThreadHead(current->interp); thread != nullptr;
         thread = PyThreadState_Next(thread)) {
        const Py_tracefunc function = thread->c_profilefunc;
        if (function == g_function || function == on_event_with_c_profiler ||
            function == on_event_adopting) {
            continue;
        }
        // A profile function of the program's keeps running, called from vztrace's: the
        // thread takes it over at its next event (its thread-locals are its own).
        if (function != nullptr) {
            g_found[thread] = function;
            thread->c_profilefunc = on_event_adopting;
            continue;
        }
        set_profile_quietly(thread, g_function);
    }
}

void note_program_profile_set() {
    const PyThreadState* thread = PyThreadState_Get();
    if (thread->c_profilefunc != nullptr && thread->c_profilefunc != g_function &&
        thread->c_profileobj != nullptr) {
        g_trampoline = thread->c_profilefunc;
    }
}

void watch_c_profiler() {
    static bool watched = false;
    if (watched || !g_in_use) return;
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    PyObject* name = PyUnicode_FromString("_lsprof");
    PyObject* module = name != nullptr ? PyImport_GetModule(name) : nullptr;
    PyObject* profiler = module != nullptr ? PyObject_GetAttrString(module, "Profiler") : nullptr;
    if (profiler != nullptr && PyType_Check(profiler)) {
        watched = true;
        auto* profiler_type = reinterpret_cast<PyTypeObject*>(profiler);
        watch_method(profiler_type, "enable", g_enable_def, enable_watched, g_original_enable);
        watch_method(profiler_type, "disable", g_disable_def, disable_watched, g_original_disable);
        PyType_Modified(profiler_type);
    }
    Py_XDECREF(profiler);
    Py_XDECREF(module);
    Py_XDECREF(name);
    PyErr_Clear();
    PyErr_Restore(type, value, traceback);
}

bool sends_python_calls(PyThreadState* thread) {
    return thread->c_profilefunc == g_function || thread->c_profilefunc == on_event_with_c_profiler;
}
#endif

bool chain_program_profile(PyObject* function) {
#if PY_VERSION_HEX < 0x030C0000
    // sys.setprofile() replaces an enabled C profiler's function under python: it is no
    // longer called from vztrace's either.
    if (PyThreadState* thread = PyThreadState_Get();
        thread->c_profilefunc == on_event_with_c_profiler) {
        t_c_profiler = nullptr;
        set_profile_quietly(thread, g_function);
    }
#endif
    if (!attached_to_current_thread()) return false;
    name_events();
    const bool had_one = t_program_profile != nullptr;
    PyObject* previous = t_program_profile;
    t_program_profile = function == Py_None ? nullptr : Py_NewRef(function);
    Py_XDECREF(previous);
    t_drop_pending = t_program_profile != nullptr && !had_one;
    t_drop_frame = PyEval_GetFrame();
    return true;
}

PyObject* chained_program_profile() { return t_program_profile; }

}  // namespace vztrace::tracer::profile

#if PY_VERSION_HEX < 0x030C0000 && defined(VZTRACE_INTERPOSE_EVAL_FRAME)
// 3.11's profile function is set thread by thread: vztrace sets it on the threads that
// threading and _thread start (thread_bootstrap), but a thread that C code starts, and that
// takes a thread state of its own to run Python (a ctypes callback as a pthread's start
// routine; an extension's worker thread: PyGILState_Ensure, or PyThreadState_New then
// PyEval_AcquireThread, as pybind11 does, or PyEval_RestoreThread), had none, and none of
// its calls were recorded. vztrace's executable stands in for those three functions where
// extension modules call them (libpython's own calls stay inside it), and sets the profile
// function on a thread state that has none, before the thread runs its first Python code.
// PyEval_RestoreThread also ends every Py_BEGIN_ALLOW_THREADS block of an extension: on a
// thread already attached, the stand-in adds to taking the GIL two global loads, a
// thread-local one, a call of PyThreadState_Get and a compare of its profile function.
namespace {

void attach_if_new() {
    using vztrace::tracer::profile::t_vztrace_thread;
    if (!vztrace::tracer::hooks::g_active || t_vztrace_thread ||
        !vztrace::tracer::profile::in_use()) {
        return;
    }
    PyThreadState* thread = PyThreadState_Get();
    // vztrace records the main interpreter alone: a subinterpreter's thread state is left
    // as it is (_xxsubinterpreters takes one with PyEval_RestoreThread).
    if (thread->c_profilefunc == nullptr && thread->tracing == 0 &&
        thread->interp == PyInterpreterState_Main()) {
        vztrace::tracer::profile::attach_current_thread();
    }
}

template <typename Function>
Function real(const char* name) {
    return reinterpret_cast<Function>(::dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" [[gnu::visibility("default")]] PyGILState_STATE PyGILState_Ensure(void) {
    static const auto ensure = real<PyGILState_STATE (*)()>("PyGILState_Ensure");
    const PyGILState_STATE state = ensure();
    attach_if_new();
    return state;
}

extern "C" [[gnu::visibility("default")]] void PyEval_AcquireThread(PyThreadState* thread) {
    static const auto acquire = real<void (*)(PyThreadState*)>("PyEval_AcquireThread");
    acquire(thread);
    attach_if_new();
}

extern "C" [[gnu::visibility("default")]] void PyEval_RestoreThread(PyThreadState* thread) {
    static const auto restore = real<void (*)(PyThreadState*)>("PyEval_RestoreThread");
    restore(thread);
    attach_if_new();
}
#endif
