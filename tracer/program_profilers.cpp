#include <Python.h>

#include "tracer/program_profilers.hpp"

#include <structmember.h>

#include <array>
#include <cstdint>

#include "tracer/frame_hook.hpp"
#include "tracer/hook_state.hpp"
#include "tracer/module_functions.hpp"
#include "tracer/monitoring_hooks.hpp"
#include "tracer/profile_hooks.hpp"

namespace vztrace::tracer::program_profilers {
namespace {

constexpr bool kMonitoring = PY_VERSION_HEX >= 0x030C0000;
constexpr int kTools = 6;                      // sys.monitoring's tool ids for programs: 0-5
constexpr std::uint32_t kProfileBit = 1 << 8;  // the thread's profile function (setprofile)

// vztrace's own tool id, which moves when the program takes it (monitoring_hooks.hpp).
int vztrace_tool() { return monitoring::tool_id(); }
long g_c_return = 0;  // sys.monitoring.events.C_RETURN, C_RAISE, CALL
long g_c_raise = 0;
long g_call = 0;
long g_stop_iteration = 0;                     // sys.monitoring.events.STOP_ITERATION
std::array<bool, kTools> g_c_exit_callback{};  // a callback for C_RETURN or C_RAISE

// Tools (bits 0-5, kProfileBit) that are to lose their next C return event on this
// thread when it is the one of the call that turned them on: at that caller's frame (the
// frame for a profile function, its code for sys.monitoring). Compared, never used.
thread_local std::uint32_t t_drop = 0;
thread_local const void* t_drop_frame = nullptr;
thread_local const void* t_drop_code = nullptr;

// CPython's functions that vztrace's stand in for.
PyObject* g_setprofile = nullptr;
PyObject* g_getprofile = nullptr;
PyObject* g_setprofile_all = nullptr;
PyObject* g_register_callback = nullptr;
PyObject* g_set_events = nullptr;
PyObject* g_set_local_events = nullptr;

// ---- the forwarder ------------------------------------------------------------------

// Calls `target` with the arguments it is given, except the one event to drop.
struct Forwarder {
    PyObject base;
    PyObject* target;
    int tool;          // 0-5: a sys.monitoring C_RETURN / C_RAISE callback; -1: a profile function
    bool raise_event;  // a sys.monitoring callback's event is C_RAISE
    vectorcallfunc vectorcall;
};

PyTypeObject* g_forwarder_type = nullptr;

bool is_profile_c_exit(PyObject* event) {
    return PyUnicode_Check(event) && (PyUnicode_CompareWithASCIIString(event, "c_return") == 0 ||
                                      PyUnicode_CompareWithASCIIString(event, "c_exception") == 0);
}

// A C return event for a call of a plain Python function: python calls those inside its
// evaluation loop, and sends no C return; the frame hook's presence makes CPython call them
// as it calls C functions, and send one.
vectorcallfunc g_function_vectorcall = nullptr;  // a plain Python function's (CPython's own)

bool from_frame_hook(PyObject* const* args, Py_ssize_t nargs) {
    if (nargs < 3 || !Py_IS_TYPE(args[2], &PyFunction_Type)) return false;
    const auto* function = reinterpret_cast<PyFunctionObject*>(args[2]);
    // A frame the hook entered before it gave way, returning since (hook_state.hpp).
    if (hooks::t_hook_frame_returned != nullptr &&
        hooks::t_hook_frame_returned == function->func_code) {
        hooks::t_hook_frame_returned = nullptr;
        return true;
    }
    return frame_hook::live() && function->vectorcall == g_function_vectorcall;
}

// CPython's vectorcall for Python functions (not public on 3.13): a function's, made and
// dropped, never run.
void find_function_vectorcall() {
    PyCodeObject* code = PyCode_NewEmpty("<vztrace>", "f", 0);
    PyObject* globals = PyDict_New();
    PyObject* function = code != nullptr && globals != nullptr
                             ? PyFunction_New(reinterpret_cast<PyObject*>(code), globals)
                             : nullptr;
    if (function != nullptr) {
        g_function_vectorcall = reinterpret_cast<PyFunctionObject*>(function)->vectorcall;
    }
    Py_XDECREF(function);
    Py_XDECREF(globals);
    Py_XDECREF(code);
    PyErr_Clear();
}

// 3.12+: the program's callback raised. At a C call's return, CPython calls no tool after
// it: vztrace's own (a lower id than a profile function's 6 or a tool above vztrace's) is
// not called, and the call is ended here (it was left open, and the calls after nested
// under it). A profile function is given a method descriptor's call bound to its object.
void c_exit_lost(const Forwarder& forwarder, PyObject* const* args, Py_ssize_t nargs) {
    if (forwarder.tool >= 0) {
        if (forwarder.tool > vztrace_tool() && nargs >= 3) {
            monitoring::c_exit_lost(args[0], args[2], forwarder.raise_event);
        }
        return;
    }
    if (nargs != 3 || !PyFrame_Check(args[0]) || !is_profile_c_exit(args[1])) return;
    PyObject* type = nullptr;
    PyObject* value = nullptr;
    PyObject* traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    PyCodeObject* code = PyFrame_GetCode(reinterpret_cast<PyFrameObject*>(args[0]));
    monitoring::c_exit_lost(reinterpret_cast<PyObject*>(code), args[2],
                            PyUnicode_CompareWithASCIIString(args[1], "c_exception") == 0);
    Py_DECREF(code);
    PyErr_Restore(type, value, traceback);
}

PyObject* forward(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    auto* forwarder = reinterpret_cast<Forwarder*>(self);
    if (forwarder->tool >= 0 && from_frame_hook(args, PyVectorcall_NARGS(nargsf))) {
        Py_RETURN_NONE;
    }
    const std::uint32_t bit = forwarder->tool < 0 ? kProfileBit : 1U << forwarder->tool;
    if (VZ_UNLIKELY((t_drop & bit) != 0)) {
        t_drop &= ~bit;
        const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
        // Profile functions: (frame, event, arg); monitoring: (code, offset, callable, arg0).
        const bool dropped = forwarder->tool < 0 ? nargs == 3 && args[0] == t_drop_frame &&
                                                       is_profile_c_exit(args[1])
                                                 : nargs >= 1 && args[0] == t_drop_code;
        if (dropped) Py_RETURN_NONE;
    }
    PyObject* result = PyObject_Vectorcall(forwarder->target, args, nargsf, kwnames);
    if (VZ_UNLIKELY(result == nullptr) && kMonitoring) {
        c_exit_lost(*forwarder, args, PyVectorcall_NARGS(nargsf));
    }
    return result;
}

void forwarder_dealloc(PyObject* self) {
    Py_XDECREF(reinterpret_cast<Forwarder*>(self)->target);
    PyTypeObject* type = Py_TYPE(self);
    type->tp_free(self);
    Py_DECREF(type);
}

PyMemberDef g_forwarder_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(Forwarder, vectorcall), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr}};

PyType_Slot g_forwarder_slots[] = {{Py_tp_dealloc, reinterpret_cast<void*>(forwarder_dealloc)},
                                   {Py_tp_call, reinterpret_cast<void*>(PyVectorcall_Call)},
                                   {Py_tp_members, g_forwarder_members},
                                   {0, nullptr}};

PyType_Spec g_forwarder_spec = {"vztrace.EventForwarder", sizeof(Forwarder), 0,
                                Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL, g_forwarder_slots};

PyObject* make_forwarder(PyObject* target, int tool, bool raise_event = false) {
    auto* forwarder = PyObject_New(Forwarder, g_forwarder_type);
    if (forwarder == nullptr) return nullptr;
    forwarder->target = Py_NewRef(target);
    forwarder->tool = tool;
    forwarder->raise_event = raise_event;
    forwarder->vectorcall = forward;
    return reinterpret_cast<PyObject*>(forwarder);
}

// The program's own callable behind a forwarder (a new reference either way).
PyObject* unwrapped(PyObject* callable) {
    if (callable != nullptr && Py_IS_TYPE(callable, g_forwarder_type)) {
        return Py_NewRef(reinterpret_cast<Forwarder*>(callable)->target);
    }
    return callable == nullptr ? nullptr : Py_NewRef(callable);
}

// ---- who receives C return events at the caller's call site ----------------------------

long events_of(const char* getter, int tool, PyObject* code) {
    PyObject* mon = PySys_GetObject("monitoring");  // borrowed
    if (mon == nullptr) return 0;
    PyObject* result = code == nullptr ? PyObject_CallMethod(mon, getter, "i", tool)
                                       : PyObject_CallMethod(mon, getter, "iO", tool, code);
    const long events = result != nullptr ? PyLong_AsLong(result) : 0;
    Py_XDECREF(result);
    PyErr_Clear();
    return events < 0 ? 0 : events;
}

bool thread_has_program_profiler() {
    const PyThreadState* state = PyThreadState_Get();
    return state->c_profilefunc != nullptr && state->c_profileobj != nullptr;
}

// Tools of the program's that get C return events at `code`'s call sites now.
std::uint32_t receiving(PyObject* code) {
    std::uint32_t tools = thread_has_program_profiler() ? kProfileBit : 0;
    if (!kMonitoring) return tools;
    for (int tool = 0; tool < kTools; ++tool) {
        if (tool == vztrace_tool() || !g_c_exit_callback[tool]) continue;
        long events = events_of("get_events", tool, nullptr);
        if (code != nullptr) events |= events_of("get_local_events", tool, code);
        // C_RETURN and C_RAISE come with CALL (CPython turns them on together).
        if ((events & (g_call | g_c_return | g_c_raise)) != 0) tools |= 1U << tool;
    }
    return tools;
}

// Whether `code`'s call sites are instrumented for CALL by a tool other than vztrace, so
// that python too would report a C return there. On 3.11 a profile function of the
// program's is the one way.
bool instrumented_by_others(PyObject* code) {
    if (!kMonitoring) return thread_has_program_profiler();
    PyObject* mon = PySys_GetObject("monitoring");
    PyObject* all = mon != nullptr ? PyObject_CallMethod(mon, "_all_events", nullptr) : nullptr;
    PyObject* call_tools = all != nullptr && PyDict_Check(all)
                               ? PyDict_GetItemString(all, "CALL")  // borrowed
                               : nullptr;
    const long global = call_tools != nullptr ? PyLong_AsLong(call_tools) : 0;
    Py_XDECREF(all);
    PyErr_Clear();
    if ((global & ~(1L << vztrace_tool())) > 0) return true;  // _all_events leaves vztrace out
    for (int tool = 0; tool < kTools && code != nullptr; ++tool) {
        if (tool == vztrace_tool()) continue;
        if ((events_of("get_local_events", tool, code) & (g_call | g_c_return | g_c_raise)) != 0) {
            return true;
        }
    }
    return false;
}

// Whether vztrace has the caller's call sites instrumented: on 3.12+ while it records C
// calls; on 3.11 while its profile function is this thread's.
bool vztrace_instruments_calls() {
    if (kMonitoring) return hooks::g_active && hooks::g_record_c_calls;
    return profile::attached_to_current_thread();
}

// Calls CPython's function; the tools that begin to receive C return events at the
// caller's call sites through it lose the first one, when python would not have sent it.
// `registered_tool`: the call registers that tool's C return callback (-1: none).
PyObject* call_noting_new_tools(PyObject* original, PyObject* const* args, Py_ssize_t nargs,
                                int registered_tool = -1) {
    PyFrameObject* frame = PyEval_GetFrame();  // borrowed
    PyObject* code =
        frame != nullptr ? reinterpret_cast<PyObject*>(PyFrame_GetCode(frame)) : nullptr;
    const bool spurious_possible = vztrace_instruments_calls() && !instrumented_by_others(code);
    const std::uint32_t before = spurious_possible ? receiving(code) : 0;
    PyObject* result = PyObject_Vectorcall(original, args, nargs, nullptr);
    if (result != nullptr && registered_tool >= 0) g_c_exit_callback[registered_tool] = true;
    const std::uint32_t added =
        result != nullptr && spurious_possible ? receiving(code) & ~before : 0;
    if (added != 0) {
        t_drop |= added;
        t_drop_frame = frame;
        t_drop_code = code;
    }
    Py_XDECREF(code);
    return result;
}

// ---- the replacements ------------------------------------------------------------------

// sys.setprofile(f) and sys._setprofileallthreads(f): f is called through a forwarder.
PyObject* set_profile_through(PyObject* original, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 1 || args[0] == Py_None) return call_noting_new_tools(original, args, nargs);
    PyObject* forwarder = make_forwarder(args[0], -1);
    if (forwarder == nullptr) return nullptr;
    PyObject* result = call_noting_new_tools(original, &forwarder, 1);
    Py_DECREF(forwarder);
    return result;
}

PyObject* setprofile(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    // 3.11: one profile function a thread; the program's is called from vztrace's. As in
    // python's own, a call made while one is installing (from a __del__ that releasing the
    // replaced function runs) is refused, and the outer call's function stays.
    static bool installing = false;
    if (!kMonitoring && nargs == 1 && installing) {
        installing = false;
        PyErr_SetString(PyExc_RuntimeError,
                        "Cannot install a profile function while another profile function is "
                        "being installed");
        return nullptr;
    }
    installing = true;
    const bool chained = !kMonitoring && nargs == 1 && profile::chain_program_profile(args[0]);
    installing = false;
    if (chained) Py_RETURN_NONE;
    PyObject* result = set_profile_through(g_setprofile, args, nargs);
    if (!kMonitoring && result != nullptr && nargs == 1 && args[0] != Py_None) {
        profile::note_program_profile_set();
    }
    return result;
}

PyObject* setprofile_all(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    return set_profile_through(g_setprofile_all, args, nargs);
}

PyObject* getprofile(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (!kMonitoring && nargs == 0 && profile::attached_to_current_thread()) {
        PyObject* chained = profile::chained_program_profile();
        return Py_NewRef(chained != nullptr ? chained : Py_None);
    }
    PyObject* profile = PyObject_Vectorcall(g_getprofile, args, nargs, nullptr);
    PyObject* own = unwrapped(profile);
    Py_XDECREF(profile);
    return own;
}

// register_callback(tool, event, func): a C_RETURN or C_RAISE callback goes through a
// forwarder; the answer (the callback it replaces) is the program's own.
PyObject* register_callback(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    // On vztrace's tool id: vztrace moves off it first, so what follows sees the program's.
    if (nargs >= 1 && !monitoring::free_for_program(args[0], true)) return nullptr;
    if (nargs != 3 || !PyLong_Check(args[0]) || !PyLong_Check(args[1])) {
        return PyObject_Vectorcall(g_register_callback, args, nargs, nullptr);
    }
    const long tool = PyLong_AsLong(args[0]);
    const long event = PyLong_AsLong(args[1]);
    PyErr_Clear();
    const bool c_exit = (event == g_c_return || event == g_c_raise) && tool >= 0 && tool < kTools &&
                        tool != vztrace_tool();
    PyObject* result = nullptr;
    if (c_exit && args[2] != Py_None) {
        PyObject* forwarder = make_forwarder(args[2], static_cast<int>(tool), event == g_c_raise);
        if (forwarder == nullptr) return nullptr;
        PyObject* forwarded[3] = {args[0], args[1], forwarder};
        result = call_noting_new_tools(g_register_callback, forwarded, 3, static_cast<int>(tool));
        Py_DECREF(forwarder);
    } else {
        result = PyObject_Vectorcall(g_register_callback, args, nargs, nullptr);
        if (c_exit && result != nullptr) g_c_exit_callback[tool] = false;
    }
    PyObject* own = unwrapped(result);
    Py_XDECREF(result);
    return own;
}

// STOP_ITERATION events differ with a frame-evaluation function (see frame_hook.hpp).
void check_stop_iteration(PyObject* event_set) {
    if (!frame_hook::live() || !PyLong_Check(event_set)) return;
    const long events = PyLong_AsLong(event_set);
    if (events == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return;
    }
    if ((events & g_stop_iteration) != 0) {
        frame_hook::give_way("the program turned on sys.monitoring's STOP_ITERATION events");
    }
}

PyObject* set_events(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs >= 1 && !monitoring::free_for_program(args[0], true)) return nullptr;
    if (nargs == 2) check_stop_iteration(args[1]);
    return call_noting_new_tools(g_set_events, args, nargs);
}

PyObject* set_local_events(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs >= 1 && !monitoring::free_for_program(args[0], true)) return nullptr;
    if (nargs == 3) check_stop_iteration(args[2]);
    return call_noting_new_tools(g_set_local_events, args, nargs);
}

PyMethodDef g_setprofile_def = {"setprofile", reinterpret_cast<PyCFunction>(+setprofile),
                                METH_FASTCALL, "setprofile($module, function, /)\n--\n\n"};
PyMethodDef g_getprofile_def = {"getprofile", reinterpret_cast<PyCFunction>(+getprofile),
                                METH_FASTCALL, "getprofile($module, /)\n--\n\n"};
PyMethodDef g_setprofile_all_def = {"_setprofileallthreads",
                                    reinterpret_cast<PyCFunction>(+setprofile_all), METH_FASTCALL,
                                    "_setprofileallthreads($module, function, /)\n--\n\n"};
PyMethodDef g_register_callback_def = {
    "register_callback", reinterpret_cast<PyCFunction>(+register_callback), METH_FASTCALL,
    "register_callback($module, tool_id, event, func, /)\n--\n\n"};
PyMethodDef g_set_events_def = {"set_events", reinterpret_cast<PyCFunction>(+set_events),
                                METH_FASTCALL,
                                "set_events($module, tool_id, event_set, /)\n--\n\n"};
PyMethodDef g_set_local_events_def = {
    "set_local_events", reinterpret_cast<PyCFunction>(+set_local_events), METH_FASTCALL,
    "set_local_events($module, tool_id, code, event_set, /)\n--\n\n"};

void replace(PyObject* module, const char* module_name, PyMethodDef& def, PyObject*& original) {
    Py_XDECREF(replace_module_function(module, module_name, def, original));
}

long event_bit(PyObject* events, const char* name) {
    PyObject* bit = PyObject_GetAttrString(events, name);
    const long value = bit != nullptr ? PyLong_AsLong(bit) : 0;
    Py_XDECREF(bit);
    PyErr_Clear();
    return value;
}

}  // namespace

PyObject* program_callable(PyObject* callable) { return unwrapped(callable); }

void install() {
    find_function_vectorcall();
    g_forwarder_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&g_forwarder_spec));
    if (g_forwarder_type == nullptr) {
        PyErr_Clear();
        return;
    }
    PyObject* sys = PyImport_ImportModule("sys");
    if (sys == nullptr) {
        PyErr_Clear();
        return;
    }
    replace(sys, "sys", g_getprofile_def, g_getprofile);
    replace(sys, "sys", g_setprofile_def, g_setprofile);
    if (PyObject_HasAttrString(sys, "_setprofileallthreads")) {
        replace(sys, "sys", g_setprofile_all_def, g_setprofile_all);
    }
    PyObject* mon = kMonitoring ? PyObject_GetAttrString(sys, "monitoring") : nullptr;
    PyObject* events = mon != nullptr ? PyObject_GetAttrString(mon, "events") : nullptr;
    PyErr_Clear();
    if (events != nullptr) {
        g_c_return = event_bit(events, "C_RETURN");
        g_c_raise = event_bit(events, "C_RAISE");
        g_call = event_bit(events, "CALL");
        g_stop_iteration = event_bit(events, "STOP_ITERATION");
        replace(mon, "sys.monitoring", g_register_callback_def, g_register_callback);
        replace(mon, "sys.monitoring", g_set_events_def, g_set_events);
        replace(mon, "sys.monitoring", g_set_local_events_def, g_set_local_events);
    }
    Py_XDECREF(events);
    Py_XDECREF(mon);
    Py_DECREF(sys);
}

}  // namespace vztrace::tracer::program_profilers
