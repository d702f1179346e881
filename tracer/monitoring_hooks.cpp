#include "tracer/monitoring_hooks.hpp"

#if PY_VERSION_HEX >= 0x030C0000

#include <fmt/format.h>

#include <array>
#include <cstddef>
#include <new>
#include <utility>
#include <vector>

#include "tracer/call_details.hpp"
#include "tracer/hook_state.hpp"
#include "tracer/module_functions.hpp"
#include "tracer/python_symbols.hpp"

namespace vztrace::tracer::monitoring {
namespace {

using hooks::g_active;
using hooks::g_session;

PyObject* g_disable = nullptr;  // sys.monitoring.DISABLE
int g_tool_id = -1;
// Whether a callback has returned DISABLE: the places it turned off stay off for the tool
// id, whoever holds it next (see move_tool).
bool g_disabled_some = false;

VZ_ALWAYS_INLINE PyObject* disable() {
    g_disabled_some = true;
    return Py_NewRef(g_disable);
}

// Enter: the clock is read last, exit: first, so vztrace's own work falls outside the call.
VZ_ALWAYS_INLINE PyObject* record_enter(PyObject* code) {
    const SymbolId id = symbols::of_code(code);
    if (VZ_UNLIKELY(id == kHiddenSymbol)) return disable();
    g_session->current_buffer().append(TickClock::now(), id, EventKind::kEnter);
    Py_RETURN_NONE;
}

VZ_ALWAYS_INLINE PyObject* record_exit(PyObject* code, EventKind kind, bool can_disable) {
    const std::uint64_t now = TickClock::now();
    const SymbolId id = symbols::of_code(code);
    if (VZ_UNLIKELY(id == kHiddenSymbol)) {
        if (can_disable) return disable();
        Py_RETURN_NONE;
    }
    g_session->current_buffer().append(now, id, kind);
    Py_RETURN_NONE;
}

// Whether an event is for vztrace to record. From 3.13 C code can fire events itself
// (PyMonitoring_Fire*Event) with any "code-like" object in place of a code object; those
// are not recorded. On 3.12 every event comes with a code object.
VZ_ALWAYS_INLINE bool wanted([[maybe_unused]] PyObject* code) {
#if PY_VERSION_HEX >= 0x030D0000
    return g_active && PyCode_Check(code);
#else
    return g_active;
#endif
}

// PY_START, PY_RESUME, PY_THROW: (code, instruction_offset[, exception])
PyObject* on_enter(PyObject*, PyObject* const* args, Py_ssize_t) {
    if (VZ_UNLIKELY(!wanted(args[0]))) Py_RETURN_NONE;
    return record_enter(args[0]);
}

// PY_THROW: (code, instruction_offset, exception). This event cannot be disabled
// (sys.monitoring raises ValueError into the program if its callback asks to).
PyObject* on_throw(PyObject*, PyObject* const* args, Py_ssize_t) {
    if (VZ_UNLIKELY(!wanted(args[0]))) Py_RETURN_NONE;
    const SymbolId id = symbols::of_code(args[0]);
    if (VZ_LIKELY(id != kHiddenSymbol)) {
        g_session->current_buffer().append(TickClock::now(), id, EventKind::kEnter);
    }
    Py_RETURN_NONE;
}

// PY_RETURN, PY_YIELD: (code, instruction_offset, value)
PyObject* on_exit(PyObject*, PyObject* const* args, Py_ssize_t) {
    if (VZ_UNLIKELY(!wanted(args[0]))) Py_RETURN_NONE;
    return record_exit(args[0], EventKind::kExit, true);
}

// PY_UNWIND: (code, instruction_offset, exception); this event cannot be disabled.
PyObject* on_unwind(PyObject*, PyObject* const* args, Py_ssize_t) {
    if (VZ_UNLIKELY(!wanted(args[0]))) Py_RETURN_NONE;
    return record_exit(args[0], EventKind::kExitByException, false);
}

// After the frame hook has given way (see frame_hook.hpp): frames it entered are still on
// the stacks, below every frame entered since, and it records their ends itself. A thread
// keeps the calls begun here (t_fallback_calls), and hooks::fallback_exit_recorded tells
// the hook's ends from theirs. No DISABLE: the same code may run later in a frame of this
// kind.
PyObject* on_enter_after_hook(PyObject*, PyObject* const* args, Py_ssize_t) {
    if (VZ_UNLIKELY(!wanted(args[0]))) Py_RETURN_NONE;
    const SymbolId id = symbols::of_code(args[0]);
    if (VZ_UNLIKELY(id == kHiddenSymbol)) return disable();
    hooks::t_fallback_calls.push_back(id);
    g_session->current_buffer().append(TickClock::now(), id, EventKind::kEnter);
    Py_RETURN_NONE;
}

PyObject* on_throw_after_hook(PyObject*, PyObject* const* args, Py_ssize_t) {
    if (VZ_UNLIKELY(!wanted(args[0]))) Py_RETURN_NONE;
    const SymbolId id = symbols::of_code(args[0]);
    if (VZ_UNLIKELY(id == kHiddenSymbol)) Py_RETURN_NONE;  // PY_THROW cannot be disabled
    hooks::t_fallback_calls.push_back(id);
    g_session->current_buffer().append(TickClock::now(), id, EventKind::kEnter);
    Py_RETURN_NONE;
}

VZ_ALWAYS_INLINE PyObject* record_exit_after_hook(PyObject* code, EventKind kind) {
    const std::uint64_t now = TickClock::now();
    const SymbolId id = symbols::of_code(code);
    if (VZ_UNLIKELY(id == kHiddenSymbol)) Py_RETURN_NONE;
    if (!hooks::fallback_exit_recorded(id, kind == EventKind::kExitByException)) Py_RETURN_NONE;
    g_session->current_buffer().append(now, id, kind);
    Py_RETURN_NONE;
}

PyObject* on_exit_after_hook(PyObject*, PyObject* const* args, Py_ssize_t) {
    if (VZ_UNLIKELY(!wanted(args[0]))) Py_RETURN_NONE;
    return record_exit_after_hook(args[0], EventKind::kExit);
}

PyObject* on_unwind_after_hook(PyObject*, PyObject* const* args, Py_ssize_t) {
    if (VZ_UNLIKELY(!wanted(args[0]))) Py_RETURN_NONE;
    return record_exit_after_hook(args[0], EventKind::kExitByException);
}

// CALL: (code, instruction_offset, callable, arg0). Python callables are recorded by
// PY_START, so CALL only records C callables. A Python callee never DISABLEs its call
// site: DISABLE turns CALL (and with it C_RETURN and C_RAISE) off at that site for good,
// and a site that later calls a C function (`fn(x)` with `fn` sometimes `len`) would
// lose those calls. Keeping it costs about 16 ns a Python call (fib, 3.12: +47 ns against
// +31 with DISABLE); DISABLE stays for final decisions (code left out by a filter,
// vztrace's own frames).
PyObject* on_call(PyObject*, PyObject* const* args, Py_ssize_t) {
    PyObject* callable = args[2];
    if (!symbols::is_c_callable(callable)) {
        // A call site in code that is left out (a file filter, vztrace's own frames) never
        // records a C call: DISABLE loses nothing there, and a left-out function then
        // costs what it costs under python.
        if (VZ_UNLIKELY(wanted(args[0]) && symbols::of_code(args[0]) == kHiddenSymbol)) {
            return disable();
        }
        Py_RETURN_NONE;
    }
    if (VZ_UNLIKELY(!wanted(args[0]))) Py_RETURN_NONE;
    if (VZ_UNLIKELY(symbols::of_code(args[0]) == kHiddenSymbol)) return disable();
    const SymbolId id = symbols::of_c_callable(callable);
    if (VZ_UNLIKELY(id == kHiddenSymbol)) Py_RETURN_NONE;  // out of memory: stopped
    g_session->current_buffer().append(TickClock::now(), id, EventKind::kEnter);
    Py_RETURN_NONE;
}

// C_RETURN, C_RAISE: (code, instruction_offset, callable, arg0)
PyObject* on_c_exit(PyObject* kind, PyObject* const* args, Py_ssize_t) {
    if (VZ_UNLIKELY(!wanted(args[0]))) Py_RETURN_NONE;
    const std::uint64_t now = TickClock::now();
    PyObject* callable = args[2];
    if (!symbols::is_c_callable(callable)) Py_RETURN_NONE;
    if (VZ_UNLIKELY(symbols::of_code(args[0]) == kHiddenSymbol)) Py_RETURN_NONE;
    const SymbolId id = symbols::of_c_callable(callable);
    if (VZ_UNLIKELY(id == kHiddenSymbol)) Py_RETURN_NONE;  // out of memory: stopped
    g_session->current_buffer().append(
        now, id, kind == Py_True ? EventKind::kExitByException : EventKind::kExit);
    Py_RETURN_NONE;
}

// --log-func-args, --log-func-retval, --log-exception, --log-audit: these take the place
// of the callbacks above (which stay as they are) and record what those options add
// (call_details.hpp). Calls made while vztrace takes a repr are not recorded.
PyObject* on_start_detailed(PyObject*, PyObject* const* args, Py_ssize_t) {
    if (VZ_UNLIKELY(!wanted(args[0])) || details::t_busy) Py_RETURN_NONE;
    const SymbolId id = symbols::of_code(args[0]);
    if (VZ_UNLIKELY(id == kHiddenSymbol)) return disable();
    // The new frame is the thread's current one: PY_START fires from its first instruction.
    details::record_enter(id, args[0], details::g_wanted.args ? PyEval_GetFrame() : nullptr);
    Py_RETURN_NONE;
}

// PY_RETURN: the value returned; PY_YIELD is a suspension, not a return (on_exit).
PyObject* on_return_detailed(PyObject*, PyObject* const* args, Py_ssize_t) {
    if (VZ_UNLIKELY(!wanted(args[0])) || details::t_busy) Py_RETURN_NONE;
    const std::uint64_t now = TickClock::now();
    const SymbolId id = symbols::of_code(args[0]);
    if (VZ_UNLIKELY(id == kHiddenSymbol)) return disable();
    details::record_return(id, now, args[2]);
    Py_RETURN_NONE;
}

PyObject* on_unwind_detailed(PyObject*, PyObject* const* args, Py_ssize_t) {
    if (VZ_UNLIKELY(!wanted(args[0])) || details::t_busy) Py_RETURN_NONE;
    const std::uint64_t now = TickClock::now();
    const SymbolId id = symbols::of_code(args[0]);
    if (VZ_UNLIKELY(id == kHiddenSymbol)) Py_RETURN_NONE;
    details::record_unwind(id, now, args[2]);
    Py_RETURN_NONE;
}

// C_RAISE: CPython hides the exception from this callback; RAISE, which fires next in the
// calling frame, gives it (call_details.hpp, remember_exit).
PyObject* on_c_raise_detailed(PyObject*, PyObject* const* args, Py_ssize_t) {
    if (VZ_UNLIKELY(!wanted(args[0])) || details::t_busy) Py_RETURN_NONE;
    const std::uint64_t now = TickClock::now();
    PyObject* callable = args[2];
    if (!symbols::is_c_callable(callable)) Py_RETURN_NONE;
    if (VZ_UNLIKELY(symbols::of_code(args[0]) == kHiddenSymbol)) Py_RETURN_NONE;
    const SymbolId id = symbols::of_c_callable(callable);
    if (VZ_UNLIKELY(id == kHiddenSymbol)) Py_RETURN_NONE;  // out of memory: stopped
    details::remember_exit(now, id, args[0]);
    Py_RETURN_NONE;
}

// RAISE: (code, instruction_offset, exception); only with --log-exception. It cannot be
// disabled, and costs nothing until something raises.
PyObject* on_raise_detailed(PyObject*, PyObject* const* args, Py_ssize_t) {
    if (!details::t_busy && VZ_LIKELY(g_active)) details::add_exception(args[0], args[2]);
    Py_RETURN_NONE;
}

// The plain callback, except while vztrace takes a repr.
template <PyObject* (*callback)(PyObject*, PyObject* const*, Py_ssize_t)>
PyObject* unless_busy(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    if (details::t_busy) Py_RETURN_NONE;
    return callback(self, args, nargs);
}

// Callbacks that allocate beyond the symbol tables and the threads' buffers (which stop
// the recording themselves): the calls begun after the frame hook gave way, the details the
// --log-* options take. The system may refuse that memory (a limit on the address space),
// and no exception may reach CPython: the recording stops there.
template <PyObject* (*callback)(PyObject*, PyObject* const*, Py_ssize_t)>
PyObject* guarded(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    try {
        return callback(self, args, nargs);
    } catch (const std::bad_alloc&) {
        g_session->stop_for_memory();
        Py_RETURN_NONE;
    }
}

enum class Source {
    kPython,
    kCCall,
    kPythonAfterHook,
    kPythonDetailed,
    kCCallDetailed,
    kCRaiseDetailed
};

struct Callback {
    const char* event;
    PyMethodDef def;
    Source source;
    PyObject* self;
};

// PyMethodDef must outlive the function objects: static storage.
std::array<Callback, 25> g_callbacks = {{
    {"PY_START",
     {"vztrace_py_start", reinterpret_cast<PyCFunction>(+on_enter), METH_FASTCALL, nullptr},
     Source::kPython,
     nullptr},
    {"PY_RESUME",
     {"vztrace_py_resume", reinterpret_cast<PyCFunction>(+on_enter), METH_FASTCALL, nullptr},
     Source::kPython,
     nullptr},
    {"PY_THROW",
     {"vztrace_py_throw", reinterpret_cast<PyCFunction>(+on_throw), METH_FASTCALL, nullptr},
     Source::kPython,
     nullptr},
    {"PY_RETURN",
     {"vztrace_py_return", reinterpret_cast<PyCFunction>(+on_exit), METH_FASTCALL, nullptr},
     Source::kPython,
     nullptr},
    {"PY_YIELD",
     {"vztrace_py_yield", reinterpret_cast<PyCFunction>(+on_exit), METH_FASTCALL, nullptr},
     Source::kPython,
     nullptr},
    {"PY_UNWIND",
     {"vztrace_py_unwind", reinterpret_cast<PyCFunction>(+on_unwind), METH_FASTCALL, nullptr},
     Source::kPython,
     nullptr},
    {"CALL",
     {"vztrace_call", reinterpret_cast<PyCFunction>(+on_call), METH_FASTCALL, nullptr},
     Source::kCCall,
     nullptr},
    {"C_RETURN",
     {"vztrace_c_return", reinterpret_cast<PyCFunction>(+on_c_exit), METH_FASTCALL, nullptr},
     Source::kCCall,
     Py_False},
    {"C_RAISE",
     {"vztrace_c_raise", reinterpret_cast<PyCFunction>(+on_c_exit), METH_FASTCALL, nullptr},
     Source::kCCall,
     Py_True},
    {"PY_START",
     {"vztrace_py_start", reinterpret_cast<PyCFunction>(+guarded<on_enter_after_hook>),
      METH_FASTCALL, nullptr},
     Source::kPythonAfterHook,
     nullptr},
    {"PY_RESUME",
     {"vztrace_py_resume", reinterpret_cast<PyCFunction>(+guarded<on_enter_after_hook>),
      METH_FASTCALL, nullptr},
     Source::kPythonAfterHook,
     nullptr},
    {"PY_THROW",
     {"vztrace_py_throw", reinterpret_cast<PyCFunction>(+guarded<on_throw_after_hook>),
      METH_FASTCALL, nullptr},
     Source::kPythonAfterHook,
     nullptr},
    {"PY_RETURN",
     {"vztrace_py_return", reinterpret_cast<PyCFunction>(+guarded<on_exit_after_hook>),
      METH_FASTCALL, nullptr},
     Source::kPythonAfterHook,
     nullptr},
    {"PY_YIELD",
     {"vztrace_py_yield", reinterpret_cast<PyCFunction>(+guarded<on_exit_after_hook>),
      METH_FASTCALL, nullptr},
     Source::kPythonAfterHook,
     nullptr},
    {"PY_UNWIND",
     {"vztrace_py_unwind", reinterpret_cast<PyCFunction>(+guarded<on_unwind_after_hook>),
      METH_FASTCALL, nullptr},
     Source::kPythonAfterHook,
     nullptr},
    {"PY_START",
     {"vztrace_py_start", reinterpret_cast<PyCFunction>(+guarded<on_start_detailed>), METH_FASTCALL,
      nullptr},
     Source::kPythonDetailed,
     nullptr},
    {"PY_RESUME",
     {"vztrace_py_resume", reinterpret_cast<PyCFunction>(+guarded<unless_busy<on_enter>>),
      METH_FASTCALL, nullptr},
     Source::kPythonDetailed,
     nullptr},
    {"PY_THROW",
     {"vztrace_py_throw", reinterpret_cast<PyCFunction>(+guarded<unless_busy<on_throw>>),
      METH_FASTCALL, nullptr},
     Source::kPythonDetailed,
     nullptr},
    {"PY_RETURN",
     {"vztrace_py_return", reinterpret_cast<PyCFunction>(+guarded<on_return_detailed>),
      METH_FASTCALL, nullptr},
     Source::kPythonDetailed,
     nullptr},
    {"PY_YIELD",
     {"vztrace_py_yield", reinterpret_cast<PyCFunction>(+guarded<unless_busy<on_exit>>),
      METH_FASTCALL, nullptr},
     Source::kPythonDetailed,
     nullptr},
    {"PY_UNWIND",
     {"vztrace_py_unwind", reinterpret_cast<PyCFunction>(+guarded<on_unwind_detailed>),
      METH_FASTCALL, nullptr},
     Source::kPythonDetailed,
     nullptr},
    {"CALL",
     {"vztrace_call", reinterpret_cast<PyCFunction>(+guarded<unless_busy<on_call>>), METH_FASTCALL,
      nullptr},
     Source::kCCallDetailed,
     nullptr},
    {"C_RETURN",
     {"vztrace_c_return", reinterpret_cast<PyCFunction>(+guarded<unless_busy<on_c_exit>>),
      METH_FASTCALL, nullptr},
     Source::kCCallDetailed,
     Py_False},
    {"C_RAISE",
     {"vztrace_c_raise", reinterpret_cast<PyCFunction>(+guarded<on_c_raise_detailed>),
      METH_FASTCALL, nullptr},
     Source::kCCallDetailed,
     nullptr},
    {"RAISE",
     {"vztrace_raise", reinterpret_cast<PyCFunction>(+guarded<on_raise_detailed>), METH_FASTCALL,
      nullptr},
     Source::kCRaiseDetailed,
     nullptr},
}};

// Tool ids in order of preference. 2 is cProfile's and never taken at first; CPython's own
// test_monitoring uses 0, 2, 3 and 4, coverage.py 1, debuggers 0. When the program names
// vztrace's tool, vztrace moves to another (move_tool), 2 as the last resort.
constexpr std::array<int, 5> kToolPreference = {5, 4, 3, 1, 0};
constexpr std::array<int, 6> kMovePreference = {5, 4, 3, 1, 0, 2};

// CPython's sys.monitoring functions, which vztrace calls itself: the module's attributes
// are the stand-ins below once installed.
struct RealFunctions {
    PyObject* use_tool_id = nullptr;
    PyObject* free_tool_id = nullptr;
    PyObject* get_tool = nullptr;
    PyObject* register_callback = nullptr;
    PyObject* set_events = nullptr;
    PyObject* get_local_events = nullptr;
    PyObject* restart_events = nullptr;
};
RealFunctions g_real;

bool call_ok(PyObject* result) {
    if (result == nullptr) {
        PyErr_Clear();
        return false;
    }
    Py_DECREF(result);
    return true;
}

bool capture_real_functions(PyObject* mon) {
    const std::pair<PyObject**, const char*> wanted[] = {
        {&g_real.use_tool_id, "use_tool_id"},
        {&g_real.free_tool_id, "free_tool_id"},
        {&g_real.get_tool, "get_tool"},
        {&g_real.register_callback, "register_callback"},
        {&g_real.set_events, "set_events"},
        {&g_real.get_local_events, "get_local_events"},
        {&g_real.restart_events, "restart_events"}};
    for (const auto& [slot, name] : wanted) {
        if (*slot == nullptr) *slot = PyObject_GetAttrString(mon, name);
        if (*slot == nullptr) {
            PyErr_Clear();
            return false;
        }
    }
    return true;
}

// What the program sees of sys.monitoring: the events of every tool but vztrace's, as
// under python. sys.monitoring.get_events and _all_events are replaced by functions that
// call CPython's and take vztrace's tool out of the answer (CPython's own test_monitoring
// checks that no tool 0-5 has events before and after each test). The functions that name
// a tool id are replaced too (g_stand_in_defs): to the program vztrace's id is a free one.
PyObject* g_get_events = nullptr;  // CPython's
PyObject* g_all_events = nullptr;

PyObject* get_events_seen(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    PyObject* events = PyObject_Vectorcall(g_get_events, args, nargs, nullptr);
    if (events == nullptr || nargs != 1) return events;
    const long tool = PyLong_AsLong(args[0]);  // CPython's has checked it
    if (tool == -1 && PyErr_Occurred()) PyErr_Clear();
    if (tool != g_tool_id) return events;
    Py_DECREF(events);
    return PyLong_FromLong(0);
}

PyObject* all_events_seen(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    PyObject* all = PyObject_Vectorcall(g_all_events, args, nargs, nullptr);
    if (all == nullptr || !PyDict_Check(all)) return all;
    PyObject* seen = PyDict_New();
    PyObject* key = nullptr;
    PyObject* tools = nullptr;
    Py_ssize_t position = 0;
    while (seen != nullptr && PyDict_Next(all, &position, &key, &tools)) {
        const long others = PyLong_AsLong(tools) & ~(1L << g_tool_id);
        if (others == 0) continue;
        PyObject* value = PyLong_FromLong(others);
        if (value == nullptr || PyDict_SetItem(seen, key, value) != 0) Py_CLEAR(seen);
        Py_XDECREF(value);
    }
    Py_DECREF(all);
    return seen;
}

PyMethodDef g_get_events_def = {
    "get_events", reinterpret_cast<PyCFunction>(+get_events_seen), METH_FASTCALL,
    "get_events($module, tool_id, /)\n--\n\nThe global events set for a tool id."};
PyMethodDef g_all_events_def = {
    "_all_events", reinterpret_cast<PyCFunction>(+all_events_seen), METH_FASTCALL,
    "_all_events($module, /)\n--\n\nThe tool ids set for each global event."};

long g_mask = 0;

// The sources turned on, in order: what move_tool turns on again under the new id.
std::vector<Source> g_sources_on;

// What sys.monitoring calls: an object it calls through vectorcall straight into the
// callback's C function. A builtin function object would add, at every event, a check for
// keyword arguments, the thread state read from libpython's thread-local and a recursion
// guard around the same call.
struct DirectCallback {
    PyObject base;
    vectorcallfunc vectorcall;
    PyObject* (*function)(PyObject*, PyObject* const*, Py_ssize_t);
    PyObject* self;  // the callback's first argument, immortal or null
};

PyObject* call_direct(PyObject* callable, PyObject* const* args, size_t nargsf, PyObject*) {
    const auto* callback = reinterpret_cast<const DirectCallback*>(callable);
    return callback->function(callback->self, args, PyVectorcall_NARGS(nargsf));
}

std::array<PyMemberDef, 2> g_direct_members = {{
    {"__vectorcalloffset__", Py_T_PYSSIZET, offsetof(DirectCallback, vectorcall), Py_READONLY,
     nullptr},
    {},
}};
std::array<PyType_Slot, 3> g_direct_slots = {{
    {Py_tp_call, reinterpret_cast<void*>(&PyVectorcall_Call)},
    {Py_tp_members, g_direct_members.data()},
    {0, nullptr},
}};
PyType_Spec g_direct_spec = {
    "vztrace.MonitoringCallback", sizeof(DirectCallback), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    g_direct_slots.data()};
PyTypeObject* g_direct_type = nullptr;

// A new callback object for `callback` (null with an exception set on failure).
PyObject* direct_callback(const Callback& callback) {
    if (g_direct_type == nullptr) {
        g_direct_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&g_direct_spec));
        if (g_direct_type == nullptr) return nullptr;
    }
    auto* object = PyObject_New(DirectCallback, g_direct_type);
    if (object == nullptr) return nullptr;
    object->vectorcall = call_direct;
    object->function = reinterpret_cast<PyObject* (*)(PyObject*, PyObject* const*, Py_ssize_t)>(
        reinterpret_cast<void (*)()>(callback.def.ml_meth));
    object->self = callback.self;
    return reinterpret_cast<PyObject*>(object);
}

// Registers the callbacks of `source` on vztrace's tool (nullptr: takes them off) and
// returns the events they are for.
long register_callbacks(PyObject* mon, Source source, int tool, bool on) {
    PyObject* events = PyObject_GetAttrString(mon, "events");
    if (events == nullptr) {
        PyErr_Clear();
        return 0;
    }
    long mask = 0;
    for (Callback& callback : g_callbacks) {
        if (callback.source != source) continue;
        PyObject* bit = PyObject_GetAttrString(events, callback.event);
        PyObject* function = on ? direct_callback(callback) : Py_NewRef(Py_None);
        if (bit != nullptr && function != nullptr &&
            call_ok(PyObject_CallFunction(g_real.register_callback, "iOO", tool, bit, function))) {
            mask |= PyLong_AsLong(bit);
        }
        PyErr_Clear();
        Py_XDECREF(bit);
        Py_XDECREF(function);
    }
    Py_DECREF(events);
    return mask;
}

// Registers the callbacks of `source` and turns their events on; false if none could be.
bool turn_on(PyObject* mon, Source source) {
    const long mask = register_callbacks(mon, source, g_tool_id, true);
    if (mask == 0) return false;
    g_mask |= mask;
    g_sources_on.push_back(source);
    return call_ok(PyObject_CallFunction(g_real.set_events, "il", g_tool_id, g_mask));
}

// The program names vztrace's tool id (to take it, or to register a callback or set events
// on it as on a free one): vztrace moves to another free id first, with every callback and
// event it had, and the program then finds the id as python would, free. Nothing runs in
// between, so no event is lost or seen twice. Places vztrace's callbacks DISABLEd stay
// disabled for the id (CPython keeps them through set_events and free_tool_id): a
// restart_events gives the program's tool every event there, as it would get under python.
// False, nothing changed, when no other id is free.
bool move_tool(PyObject* mon) {
    const int from = g_tool_id;
    int to = -1;
    for (const int id : kMovePreference) {
        if (id != from && call_ok(PyObject_CallFunction(g_real.use_tool_id, "is", id, "vztrace"))) {
            to = id;
            break;
        }
    }
    if (to < 0) return false;
    const std::vector<Source> sources = std::move(g_sources_on);
    g_sources_on.clear();
    g_tool_id = to;
    g_mask = 0;
    for (const Source source : sources) turn_on(mon, source);
    call_ok(PyObject_CallFunction(g_real.set_events, "ii", from, 0));
    for (const Source source : sources) register_callbacks(mon, source, from, false);
    call_ok(PyObject_CallFunction(g_real.free_tool_id, "i", from));
    if (g_disabled_some) call_ok(PyObject_CallNoArgs(g_real.restart_events));
    g_disabled_some = false;
    g_session->info().hook += fmt::format("; tool {} from when the program took tool {}", to, from);
    return true;
}

// Whether the first argument of a sys.monitoring function is vztrace's tool id. Anything
// else (another id, not an int) is CPython's to answer.
bool is_our_tool(PyObject* arg) {
    if (g_tool_id < 0 || !PyLong_Check(arg)) return false;
    int overflow = 0;
    const long tool = PyLong_AsLongAndOverflow(arg, &overflow);
    if (tool == -1 && PyErr_Occurred()) PyErr_Clear();
    return overflow == 0 && tool == g_tool_id;
}

bool names_our_tool(PyObject* const* args, Py_ssize_t nargs) {
    return nargs >= 1 && is_our_tool(args[0]);
}

// use_tool_id of vztrace's id: it moves first; when it cannot, CPython says the id is in
// use (it is). register_callback, set_events and set_local_events on it move vztrace in
// program_profilers.cpp's stand-ins, which the program calls.
PyObject* use_tool_id_seen(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs >= 1) free_for_program(args[0], false);
    return PyObject_Vectorcall(g_real.use_tool_id, args, static_cast<std::size_t>(nargs), nullptr);
}

// Queries on vztrace's id answer as for a free one, once CPython has checked the
// arguments; free_tool_id of it does nothing, as of a free one.
PyObject* get_tool_seen(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    PyObject* name =
        PyObject_Vectorcall(g_real.get_tool, args, static_cast<std::size_t>(nargs), nullptr);
    if (name == nullptr || !names_our_tool(args, nargs)) return name;
    Py_DECREF(name);
    Py_RETURN_NONE;
}
PyObject* get_local_events_seen(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    PyObject* events = PyObject_Vectorcall(g_real.get_local_events, args,
                                           static_cast<std::size_t>(nargs), nullptr);
    if (events == nullptr || !names_our_tool(args, nargs)) return events;
    Py_DECREF(events);
    return PyLong_FromLong(0);
}
PyObject* free_tool_id_seen(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs == 1 && names_our_tool(args, nargs)) Py_RETURN_NONE;
    return PyObject_Vectorcall(g_real.free_tool_id, args, static_cast<std::size_t>(nargs), nullptr);
}

std::array<PyMethodDef, 4> g_stand_in_defs = {{
    {"use_tool_id", reinterpret_cast<PyCFunction>(+use_tool_id_seen), METH_FASTCALL, nullptr},
    {"get_tool", reinterpret_cast<PyCFunction>(+get_tool_seen), METH_FASTCALL, nullptr},
    {"get_local_events", reinterpret_cast<PyCFunction>(+get_local_events_seen), METH_FASTCALL,
     nullptr},
    {"free_tool_id", reinterpret_cast<PyCFunction>(+free_tool_id_seen), METH_FASTCALL, nullptr},
}};

}  // namespace

bool free_for_program(PyObject* tool, bool refuse_if_stuck) {
    if (!is_our_tool(tool)) return true;
    PyObject* mon = PySys_GetObject("monitoring");  // borrowed
    if ((mon != nullptr && move_tool(mon)) || !refuse_if_stuck) return true;
    PyErr_Format(PyExc_ValueError,
                 "tool %d is in use by vztrace, and no other tool id is free for it", g_tool_id);
    return false;
}

bool install(bool record_python, bool record_c_calls, bool detailed, std::string& hook) {
    PyObject* mon = PySys_GetObject("monitoring");  // borrowed
    if (mon == nullptr) return false;
    PyObject* disable = PyObject_GetAttrString(mon, "DISABLE");
    if (disable == nullptr) {
        PyErr_Clear();
        return false;
    }
    g_disable = disable;
    if (!capture_real_functions(mon)) return false;
    for (const int id : kToolPreference) {
        if (call_ok(PyObject_CallFunction(g_real.use_tool_id, "is", id, "vztrace"))) {
            g_tool_id = id;
            break;
        }
    }
    if (g_tool_id < 0) {
        hook = "none (every sys.monitoring tool id was taken)";
        return true;
    }
    if (record_python) turn_on(mon, detailed ? Source::kPythonDetailed : Source::kPython);
    if (record_c_calls) turn_on(mon, detailed ? Source::kCCallDetailed : Source::kCCall);
    if (record_c_calls && detailed && details::g_wanted.exception) {
        turn_on(mon, Source::kCRaiseDetailed);
    }
    Py_XDECREF(replace_module_function(mon, "sys.monitoring", g_get_events_def, g_get_events));
    Py_XDECREF(replace_module_function(mon, "sys.monitoring", g_all_events_def, g_all_events));
    for (PyMethodDef& def : g_stand_in_defs) {
        PyObject* original = nullptr;
        Py_XDECREF(replace_module_function(mon, "sys.monitoring", def, original));
        Py_XDECREF(original);  // g_real holds it
    }
    hook = fmt::format("sys.monitoring (tool {})", g_tool_id);
    return true;
}

bool take_over_python_frames() {
    PyObject* mon = PySys_GetObject("monitoring");  // borrowed
    if (mon == nullptr || g_tool_id < 0) return false;
    return turn_on(mon, Source::kPythonAfterHook);
}

void stop() {
    if (g_tool_id < 0) return;
    PyObject* mon = PySys_GetObject("monitoring");
    if (mon != nullptr && g_real.set_events != nullptr)
        call_ok(PyObject_CallFunction(g_real.set_events, "ii", g_tool_id, 0));
    g_mask = 0;
}

int tool_id() { return g_tool_id; }

void c_exit_lost(PyObject* code, PyObject* callable, bool raised) {
    if (!hooks::g_record_c_calls || g_tool_id < 0 || details::t_busy) return;
    PyObject* args[4] = {code, nullptr, callable, nullptr};
    Py_XDECREF(on_c_exit(raised ? Py_True : Py_False, args, 4));
}

}  // namespace vztrace::tracer::monitoring

#else  // 3.11 has no sys.monitoring

namespace vztrace::tracer::monitoring {
bool install(bool, bool, bool, std::string&) { return false; }
bool take_over_python_frames() { return false; }
void stop() {}
int tool_id() { return -1; }
void c_exit_lost(PyObject*, PyObject*, bool) {}
bool free_for_program(PyObject*, bool) { return true; }
}  // namespace vztrace::tracer::monitoring

#endif
