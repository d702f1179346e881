#include <Python.h>

#include "embed/script_module.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tracer/clock.hpp"
#include "tracer/events.hpp"
#include "tracer/hook_state.hpp"
#include "tracer/python_symbols.hpp"
#include "tracer/settings.hpp"

// Every callable here is an object of the module's own types, never a builtin function or
// method: the hooks record those as C calls, and `vztrace.span(...).__exit__` recorded as
// a call around the span's own end would break the nesting the span is for. The API's
// calls are the program's marks, not its work, and are not in the trace (as VizTracer
// leaves its own out).

namespace vztrace::embed {
namespace {

using tracer::Session;
using Args = std::vector<tracer::events::Arg>;

// The session to record into: null when nothing is being recorded (the process is not
// traced, or its recording has ended).
Session* recording() { return tracer::hooks::g_active ? tracer::hooks::g_session : nullptr; }

// The session when what the API records now is kept: recording, not paused, not stopped by
// --max-size. Arguments' reprs (the program's code) are taken only then.
Session* recording_now() {
    Session* session = recording();
    return session != nullptr && session->keeps_what_begins_now() ? session : nullptr;
}

// ---- text of values ---------------------------------------------------------------------

using tracer::symbols::utf8_of;

// At most kMaxReprBytes bytes: a longer text is cut at a character boundary and ends
// with "...".
void cut_to_limit(std::string& text) {
    if (text.size() <= tracer::kMaxReprBytes) return;
    std::size_t end = tracer::kMaxReprBytes - 3;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    text.resize(end);
    text += "...";
}

// A value as the trace shows it: a str as it is, anything else by its repr. A repr that
// fails is recorded as such and never raises into the program, unless what it raised is
// not an Exception (KeyboardInterrupt from a signal, SystemExit): that is the program's
// and is passed on (false is returned).
// The program's __repr__ that vztrace runs to take an argument's text is vztrace's work, not
// a call of the program's (under python the API does nothing): under CPython's tracing
// guard, which no hook of vztrace's and no profiler of the program's records.
PyObject* repr_unrecorded(PyObject* value) {
    PyThreadState* thread = PyThreadState_Get();
    PyThreadState_EnterTracing(thread);
    PyObject* repr = PyObject_Repr(value);
    PyThreadState_LeaveTracing(thread);
    return repr;
}

bool text_of(PyObject* value, std::string& text) {
    if (PyUnicode_Check(value)) {
        text = utf8_of(value);
    } else if (PyObject* repr = repr_unrecorded(value); repr != nullptr) {
        text = utf8_of(repr);
        Py_DECREF(repr);
    } else {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) return false;
        PyErr_Clear();
        text = fmt::format("<repr failed: {}>", Py_TYPE(value)->tp_name);
    }
    cut_to_limit(text);
    return true;
}

// The keyword arguments of a vectorcall as recorded arguments. False with an exception set
// when one could not be taken.
bool args_of(PyObject* const* values, PyObject* kwnames, Args& args) {
    if (kwnames == nullptr) return true;
    const Py_ssize_t count = PyTuple_GET_SIZE(kwnames);
    args.reserve(static_cast<std::size_t>(count));
    for (Py_ssize_t i = 0; i < count; ++i) {
        std::string text;
        if (!text_of(values[i], text)) return false;
        args.emplace_back(utf8_of(PyTuple_GET_ITEM(kwnames, i)), std::move(text));
    }
    return true;
}

// ---- argument checks (the messages are python's own, as the stand-in gives them) --------

// The one positional argument, the name, of `function(name, /, **kwargs)`; null with
// TypeError set when there is not exactly one, or it is not a str.
PyObject* name_argument(const char* function, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs == 0) {
        PyErr_Format(PyExc_TypeError, "%s() missing 1 required positional argument: 'name'",
                     function);
        return nullptr;
    }
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes 1 positional argument but %zd were given",
                     function, nargs);
        return nullptr;
    }
    if (!PyUnicode_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "vztrace.%s() name must be a str, not %.200s", function,
                     Py_TYPE(args[0])->tp_name);
        return nullptr;
    }
    return args[0];
}

bool no_arguments(const char* function, Py_ssize_t nargs, PyObject* kwnames) {
    if (kwnames != nullptr && PyTuple_GET_SIZE(kwnames) > 0) {
        PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", function,
                     PyTuple_GET_ITEM(kwnames, 0));
        return false;
    }
    if (nargs != 0) {
        PyErr_Format(PyExc_TypeError, "%s() takes 0 positional arguments but %zd %s given",
                     function, nargs, nargs == 1 ? "was" : "were");
        return false;
    }
    return true;
}

// ---- the module's callables ---------------------------------------------------------------

// The module's types are static, filled in by ready_types(); this is their head.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
constexpr PyTypeObject kEmptyType = {PyVarObject_HEAD_INIT(nullptr, 0)};
#pragma GCC diagnostic pop

// A function of the module (or a method of one of its types, bound to the instance on
// access as a Python method is).
struct ApiFunction {
    PyObject_HEAD vectorcallfunc vectorcall;
    const char* name;
    const char* doc;
    bool binds;
};

PyTypeObject g_function_type = kEmptyType;

PyObject* function_get(PyObject* self, PyObject* instance, PyObject*) {
    if (instance == nullptr || instance == Py_None ||
        !reinterpret_cast<ApiFunction*>(self)->binds) {
        return Py_NewRef(self);
    }
    return PyMethod_New(self, instance);
}

PyObject* function_repr(PyObject* self) {
    return PyUnicode_FromFormat("<vztrace function %s>",
                                reinterpret_cast<ApiFunction*>(self)->name);
}

PyObject* function_name(PyObject* self, void*) {
    return PyUnicode_FromString(reinterpret_cast<ApiFunction*>(self)->name);
}

PyObject* function_doc(PyObject* self, void*) {
    return PyUnicode_FromString(reinterpret_cast<ApiFunction*>(self)->doc);
}

PyGetSetDef g_function_getset[] = {
    {"__name__", function_name, nullptr, nullptr, nullptr},
    {"__qualname__", function_name, nullptr, nullptr, nullptr},
    {"__doc__", function_doc, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyObject* make_function(const char* name, vectorcallfunc call, const char* doc,
                        bool binds = false) {
    ApiFunction* function = PyObject_New(ApiFunction, &g_function_type);
    if (function == nullptr) return nullptr;
    function->vectorcall = call;
    function->name = name;
    function->doc = doc;
    function->binds = binds;
    return reinterpret_cast<PyObject*>(function);
}

// The instance a method of `type` is called on (its first argument); null with TypeError
// set when there is none.
template <typename Object>
Object* instance_of(PyTypeObject& type, PyObject* const* args, size_t nargsf) {
    if (PyVectorcall_NARGS(nargsf) < 1 || !PyObject_TypeCheck(args[0], &type)) {
        PyErr_Format(PyExc_TypeError, "a method of %s called without its instance", type.tp_name);
        return nullptr;
    }
    return reinterpret_cast<Object*>(args[0]);
}

// Adds the methods `__enter__` and `__exit__` to `type`.
bool add_context_methods(PyTypeObject& type, vectorcallfunc enter, vectorcallfunc exit) {
    const std::pair<const char*, vectorcallfunc> methods[] = {{"__enter__", enter},
                                                              {"__exit__", exit}};
    for (const auto& [name, call] : methods) {
        PyObject* method = make_function(name, call, "", true);
        if (method == nullptr || PyDict_SetItemString(type.tp_dict, name, method) != 0) {
            Py_XDECREF(method);
            return false;
        }
        Py_DECREF(method);
    }
    PyType_Modified(&type);
    return true;
}

// ---- instant, counter -----------------------------------------------------------------

PyObject* instant(PyObject*, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject* name = name_argument("instant", args, nargs);
    if (name == nullptr) return nullptr;
    Session* session = recording_now();
    if (session == nullptr) Py_RETURN_NONE;
    Args recorded;
    if (!args_of(args + nargs, kwnames, recorded)) return nullptr;
    tracer::events::instant(*session, utf8_of(name), recorded);
    Py_RETURN_NONE;
}

PyObject* counter(PyObject*, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject* name = name_argument("counter", args, nargs);
    if (name == nullptr) return nullptr;
    const Py_ssize_t count = kwnames != nullptr ? PyTuple_GET_SIZE(kwnames) : 0;
    if (count == 0) {
        PyErr_SetString(PyExc_TypeError,
                        "vztrace.counter() needs at least one value, as key=number");
        return nullptr;
    }
    // Every value is checked before any is recorded.
    std::vector<double> values(static_cast<std::size_t>(count));
    for (Py_ssize_t i = 0; i < count; ++i) {
        PyObject* value = args[nargs + i];
        if (!PyLong_Check(value) && !PyFloat_Check(value)) {
            PyErr_Format(PyExc_TypeError,
                         "vztrace.counter() value '%U' must be an int or a float, not %.200s",
                         PyTuple_GET_ITEM(kwnames, i), Py_TYPE(value)->tp_name);
            return nullptr;
        }
        double& number = values[static_cast<std::size_t>(i)];
        number = PyFloat_AsDouble(value);
        if (number == -1.0 && PyErr_Occurred()) {
            // An int past a double's range is infinite, with its sign: the module vztrace
            // stands in for untraced takes any int, so this may not raise either.
            if (!PyLong_Check(value) || !PyErr_ExceptionMatches(PyExc_OverflowError))
                return nullptr;
            PyErr_Clear();
            int overflow = 0;
            PyLong_AsLongLongAndOverflow(value, &overflow);
            number = overflow < 0 ? -HUGE_VAL : HUGE_VAL;
        }
    }
    Session* session = recording();
    if (session == nullptr) Py_RETURN_NONE;
    const std::string base = utf8_of(name);
    for (Py_ssize_t i = 0; i < count; ++i) {
        const std::string key = utf8_of(PyTuple_GET_ITEM(kwnames, i));
        const std::string track = key == "value" ? base : base + "." + key;
        tracer::events::counter(*session, track, values[static_cast<std::size_t>(i)]);
    }
    Py_RETURN_NONE;
}

// ---- span -------------------------------------------------------------------------------

// What a span records: its name and its arguments' text, taken when it is made.
struct SpanMark {
    std::string name;
    Args args;
};

// Begins the span; returns whether it was recorded (its end is recorded only then).
bool begin_span(const SpanMark& mark) {
    Session* session = recording();
    if (session == nullptr) return false;
    if (session->settings().log_sparse) {  // under --log-sparse the program's spans stay
        session->symbols().add_flags(session->symbols().intern(mark.name), tracer::kSparse);
    }
    tracer::events::span_begin(*session, mark.name, mark.args);
    return true;
}

void end_span(const SpanMark& mark) {
    Session* session = recording();
    if (session == nullptr) return;
    tracer::events::span_end(*session, session->symbols().intern(mark.name), {});
}

// `vztrace.span(name, **args)`: a context manager, and a decorator when called with a
// function.
struct SpanObject {
    PyObject_HEAD SpanMark* mark;
    int recorded;  // entries recorded and not yet left
};

PyTypeObject g_span_type = kEmptyType;

// `@vztrace.span`: the function, each of its calls inside the span.
struct SpanFunction {
    PyObject_HEAD vectorcallfunc vectorcall;
    PyObject* function;
    PyObject* dict;
    PyObject* weakrefs;
    SpanMark* mark;
};

PyTypeObject g_span_function_type = kEmptyType;

void span_dealloc(PyObject* self) {
    auto* span = reinterpret_cast<SpanObject*>(self);
    delete span->mark;
    Py_TYPE(self)->tp_free(self);
}

PyObject* span_repr(PyObject* self) {
    const std::string& name = reinterpret_cast<SpanObject*>(self)->mark->name;
    PyObject* text =
        PyUnicode_DecodeUTF8(name.data(), static_cast<Py_ssize_t>(name.size()), "replace");
    if (text == nullptr) return nullptr;
    PyObject* repr = PyUnicode_FromFormat("<vztrace.span %R>", text);
    Py_DECREF(text);
    return repr;
}

PyObject* span_enter(PyObject*, PyObject* const* args, size_t nargsf, PyObject*) {
    auto* span = instance_of<SpanObject>(g_span_type, args, nargsf);
    if (span == nullptr) return nullptr;
    if (begin_span(*span->mark)) ++span->recorded;
    return Py_NewRef(args[0]);
}

// A span left by an exception ends as well; the exception goes on.
PyObject* span_exit(PyObject*, PyObject* const* args, size_t nargsf, PyObject*) {
    auto* span = instance_of<SpanObject>(g_span_type, args, nargsf);
    if (span == nullptr) return nullptr;
    if (span->recorded > 0) {
        --span->recorded;
        end_span(*span->mark);
    }
    Py_RETURN_FALSE;
}

void span_function_dealloc(PyObject* self) {
    auto* span = reinterpret_cast<SpanFunction*>(self);
    PyObject_GC_UnTrack(self);
    if (span->weakrefs != nullptr) PyObject_ClearWeakRefs(self);
    Py_CLEAR(span->function);
    Py_CLEAR(span->dict);
    delete span->mark;
    PyObject_GC_Del(self);
}

int span_function_traverse(PyObject* self, visitproc visit, void* arg) {
    auto* span = reinterpret_cast<SpanFunction*>(self);
    Py_VISIT(span->function);
    Py_VISIT(span->dict);
    return 0;
}

int span_function_clear(PyObject* self) {
    auto* span = reinterpret_cast<SpanFunction*>(self);
    Py_CLEAR(span->function);
    Py_CLEAR(span->dict);
    return 0;
}

PyObject* span_function_call(PyObject* self, PyObject* const* args, size_t nargsf,
                             PyObject* kwnames) {
    auto* span = reinterpret_cast<SpanFunction*>(self);
    if (span->function == nullptr) {
        PyErr_SetString(PyExc_RuntimeError, "vztrace.span: the function was cleared");
        return nullptr;
    }
    const bool recorded = begin_span(*span->mark);
    PyObject* result = PyObject_Vectorcall(span->function, args, nargsf, kwnames);
    if (recorded) end_span(*span->mark);
    return result;
}

// As a Python function is: bound to the instance it is looked up on.
PyObject* span_function_get(PyObject* self, PyObject* instance, PyObject*) {
    if (instance == nullptr || instance == Py_None) return Py_NewRef(self);
    return PyMethod_New(self, instance);
}

PyObject* span_function_repr(PyObject* self) {
    return PyUnicode_FromFormat("<vztrace.span of %R>",
                                reinterpret_cast<SpanFunction*>(self)->function);
}

// Pickled by name, as the function it replaces (multiprocessing sends functions so).
PyObject* span_function_reduce(PyObject* self, PyObject*) {
    return PyObject_GetAttrString(self, "__qualname__");
}

PyMethodDef g_span_function_methods[] = {
    {"__reduce__", span_function_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef g_span_function_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// The wrapper of `function` in a span named by `mark`; takes the mark. Looks like the
// function to the program, as functools.wraps makes a wrapper look.
PyObject* wrap_in_span(PyObject* function, std::unique_ptr<SpanMark> mark) {
    if (!PyCallable_Check(function)) {
        PyErr_Format(PyExc_TypeError, "vztrace.span() decorates a callable, not %.200s",
                     Py_TYPE(function)->tp_name);
        return nullptr;
    }
    SpanFunction* span = PyObject_GC_New(SpanFunction, &g_span_function_type);
    if (span == nullptr) return nullptr;
    span->vectorcall = span_function_call;
    span->function = Py_NewRef(function);
    span->dict = PyDict_New();
    span->weakrefs = nullptr;
    span->mark = mark.release();
    PyObject_GC_Track(span);
    auto* self = reinterpret_cast<PyObject*>(span);
    if (span->dict == nullptr) {
        Py_DECREF(self);
        return nullptr;
    }
    for (const char* name : {"__module__", "__name__", "__qualname__", "__doc__", "__annotations__",
                             "__type_params__"}) {
        PyObject* value = PyObject_GetAttrString(function, name);
        if (value == nullptr) {
            PyErr_Clear();
            continue;
        }
        const int status = PyDict_SetItemString(span->dict, name, value);
        Py_DECREF(value);
        if (status != 0) {
            Py_DECREF(self);
            return nullptr;
        }
    }
    PyObject* own = PyObject_GetAttrString(function, "__dict__");
    if (own == nullptr) {
        PyErr_Clear();
    } else if (PyDict_Check(own) && PyDict_Update(span->dict, own) != 0) {
        Py_DECREF(own);
        Py_DECREF(self);
        return nullptr;
    }
    Py_XDECREF(own);
    if (PyDict_SetItemString(span->dict, "__wrapped__", function) != 0) {
        Py_DECREF(self);
        return nullptr;
    }
    return self;
}

// `span_object(function)`: the decorator form `@vztrace.span("name", **args)`.
PyObject* span_call(PyObject* self, PyObject* args, PyObject* kwargs) {
    if (PyTuple_GET_SIZE(args) != 1 || (kwargs != nullptr && PyDict_GET_SIZE(kwargs) > 0)) {
        PyErr_SetString(PyExc_TypeError,
                        "a vztrace.span decorates one function: @vztrace.span(\"name\")");
        return nullptr;
    }
    return wrap_in_span(PyTuple_GET_ITEM(args, 0),
                        std::make_unique<SpanMark>(*reinterpret_cast<SpanObject*>(self)->mark));
}

// vztrace.span(name, /, **args), or vztrace.span(function, /, **args) (`@vztrace.span`).
// The arguments' text is taken once, when the span is made, and only when it can be recorded.
PyObject* span(PyObject*, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    const bool decorates = nargs == 1 && !PyUnicode_Check(args[0]) && PyCallable_Check(args[0]);
    PyObject* name = nullptr;
    if (decorates) {  // `@vztrace.span`: named by the function's qualname
        name = PyObject_GetAttrString(args[0], "__qualname__");
        if (name == nullptr || !PyUnicode_Check(name)) {
            Py_XDECREF(name);
            PyErr_Format(PyExc_TypeError,
                         "vztrace.span() cannot name %R: give the name, as "
                         "@vztrace.span(\"name\")",
                         args[0]);
            return nullptr;
        }
    } else {
        name = name_argument("span", args, nargs);
        if (name == nullptr) return nullptr;
        Py_INCREF(name);
    }
    auto mark = std::make_unique<SpanMark>(SpanMark{utf8_of(name), {}});
    Py_DECREF(name);
    if (recording_now() != nullptr && !args_of(args + nargs, kwnames, mark->args)) return nullptr;
    if (decorates) return wrap_in_span(args[0], std::move(mark));
    SpanObject* object = PyObject_New(SpanObject, &g_span_type);
    if (object == nullptr) return nullptr;
    object->mark = mark.release();
    object->recorded = 0;
    return reinterpret_cast<PyObject*>(object);
}

// ---- pause, resume, paused, active ----------------------------------------------------

PyObject* pause(PyObject*, PyObject* const*, size_t nargsf, PyObject* kwnames) {
    if (!no_arguments("pause", PyVectorcall_NARGS(nargsf), kwnames)) return nullptr;
    if (Session* session = recording()) session->pauses().pause(tracer::TickClock::now());
    Py_RETURN_NONE;
}

PyObject* resume(PyObject*, PyObject* const*, size_t nargsf, PyObject* kwnames) {
    if (!no_arguments("resume", PyVectorcall_NARGS(nargsf), kwnames)) return nullptr;
    if (Session* session = recording()) session->pauses().resume(tracer::TickClock::now());
    Py_RETURN_NONE;
}

PyObject* active(PyObject*, PyObject* const*, size_t nargsf, PyObject* kwnames) {
    if (!no_arguments("active", PyVectorcall_NARGS(nargsf), kwnames)) return nullptr;
    return PyBool_FromLong(recording_now() != nullptr);
}

// `with vztrace.paused():` resumes on leaving only if its entry was what paused the
// recording. One object may be entered again before it is left (a module's NOTRACE =
// vztrace.paused() in a recursive function): each entry keeps its own answer, and the
// inner exits resume nothing (one flag for all of them let the first inner exit resume
// inside the outer block).
struct PausedObject {
    PyObject_HEAD std::vector<bool>* entries;  // whether each entry not yet left paused
};

PyTypeObject g_paused_type = kEmptyType;

void paused_dealloc(PyObject* self) {
    delete reinterpret_cast<PausedObject*>(self)->entries;
    Py_TYPE(self)->tp_free(self);
}

PyObject* paused(PyObject*, PyObject* const*, size_t nargsf, PyObject* kwnames) {
    if (!no_arguments("paused", PyVectorcall_NARGS(nargsf), kwnames)) return nullptr;
    auto entries = std::make_unique<std::vector<bool>>();
    PausedObject* object = PyObject_New(PausedObject, &g_paused_type);
    if (object != nullptr) object->entries = entries.release();
    return reinterpret_cast<PyObject*>(object);
}

PyObject* paused_enter(PyObject*, PyObject* const* args, size_t nargsf, PyObject*) {
    auto* object = instance_of<PausedObject>(g_paused_type, args, nargsf);
    if (object == nullptr) return nullptr;
    Session* session = recording();
    const bool pauses = session != nullptr && !session->pauses().paused();
    object->entries->push_back(pauses);
    if (pauses) session->pauses().pause(tracer::TickClock::now());
    return Py_NewRef(args[0]);
}

PyObject* paused_exit(PyObject*, PyObject* const* args, size_t nargsf, PyObject*) {
    auto* object = instance_of<PausedObject>(g_paused_type, args, nargsf);
    if (object == nullptr) return nullptr;
    if (object->entries->empty()) Py_RETURN_FALSE;  // __exit__ called without __enter__
    const bool paused_here = object->entries->back();
    object->entries->pop_back();
    if (paused_here) {
        if (Session* session = recording()) session->pauses().resume(tracer::TickClock::now());
    }
    Py_RETURN_FALSE;
}

// ---- ignore, sparse -------------------------------------------------------------------

// Whether the calls of `code` are recorded and it has no mark yet.
bool recorded_unmarked(Session& session, PyObject* code) {
    const auto id = tracer::symbols::of_code(code);
    return id != tracer::kHiddenSymbol && session.symbols().flags(id) == 0;
}

// The code object of a function, a method, a staticmethod or classmethod, or of what a
// wrapper without code of its own wraps (`__wrapped__`); null, with no error, when there
// is none. The mark goes on a code object, which other functions may share (the closures
// of one `def`, the wrappers one decorator makes): when recording (`session`), the function
// found is given a copy of its code first, so that the mark is its own. The copy runs as
// the original. A code object marked already is such a copy: it keeps its marks.
PyObject* code_of(PyObject* target, Session* session) {
    PyObject* current = Py_NewRef(target);
    for (int hops = 0; hops < 16; ++hops) {
        if (PyMethod_Check(current)) {  // a bound method: its function, to own the copy
            Py_SETREF(current, Py_NewRef(PyMethod_GET_FUNCTION(current)));
        }
        PyObject* next = nullptr;
        for (const char* name : {"__code__", "__func__", "__wrapped__"}) {
            next = PyObject_GetAttrString(current, name);
            if (next != nullptr) break;
            PyErr_Clear();
        }
        if (session != nullptr && next != nullptr && PyCode_Check(next) &&
            PyFunction_Check(current) && recorded_unmarked(*session, next)) {
            PyObject* copy = PyObject_CallMethod(next, "replace", nullptr);
            if (copy != nullptr && PyObject_SetAttrString(current, "__code__", copy) == 0) {
                Py_SETREF(next, copy);
            } else {
                Py_XDECREF(copy);
                PyErr_Clear();  // the shared code, then
            }
        }
        Py_DECREF(current);
        if (next == nullptr || PyCode_Check(next)) return next;
        current = next;  // the function inside: look at it next
    }
    Py_DECREF(current);
    return nullptr;
}

// The code objects of `target` (new references): a function's (code_of), or each of a
// property's functions (fget, fset, fdel), or a functools.cached_property's (`func`, on a
// descriptor that is not callable itself).
void add_codes_of(PyObject* target, std::vector<PyObject*>& codes, Session* session) {
    const auto add_from = [&codes, session](PyObject* owner, const char* name) {
        PyObject* function = PyObject_GetAttrString(owner, name);
        if (function == nullptr) {
            PyErr_Clear();
            return;
        }
        if (PyObject* code = code_of(function, session)) codes.push_back(code);
        Py_DECREF(function);
    };
    if (PyObject_TypeCheck(target, &PyProperty_Type)) {
        for (const char* name : {"fget", "fset", "fdel"}) add_from(target, name);
    } else if (PyObject* code = code_of(target, session)) {
        codes.push_back(code);
    } else if (!PyCallable_Check(target) && Py_TYPE(target)->tp_descr_get != nullptr) {
        add_from(target, "func");
    }
}

// Flags the code of `target` (a class: of each function in its body) from now on. Returns
// false with TypeError set when `target` has none.
bool flag(const char* decorator, PyObject* target, std::uint8_t flags) {
    Session* session = recording();
    std::vector<PyObject*> codes;
    if (PyType_Check(target)) {
        PyObject* namespace_ = PyObject_GetAttrString(target, "__dict__");
        PyObject* values = namespace_ != nullptr ? PyMapping_Values(namespace_) : nullptr;
        Py_XDECREF(namespace_);
        if (values == nullptr) return false;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); ++i) {
            PyObject* member = PyList_GET_ITEM(values, i);
            if (PyType_Check(member)) continue;  // nested classes are their own
            add_codes_of(member, codes, session);
        }
        Py_DECREF(values);
    } else {
        add_codes_of(target, codes, session);
        if (codes.empty()) {
            PyErr_Format(PyExc_TypeError,
                         "vztrace.%s decorates a Python function, a method, a property or a "
                         "class, not %.200s",
                         decorator, Py_TYPE(target)->tp_name);
            return false;
        }
    }
    const std::uint64_t now = tracer::TickClock::now();
    for (PyObject* code : codes) {
        if (session != nullptr) {
            session->symbols().add_flags(tracer::symbols::of_code(code), flags, now);
        }
        Py_DECREF(code);
    }
    return true;
}

PyObject* decorate(const char* decorator, PyObject* const* args, Py_ssize_t nargs,
                   PyObject* kwnames, std::uint8_t flags) {
    if (kwnames != nullptr && PyTuple_GET_SIZE(kwnames) > 0) {
        PyObject* keyword = PyTuple_GET_ITEM(kwnames, 0);
        if (PyUnicode_CompareWithASCIIString(keyword, "function") == 0) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got some positional-only arguments passed as keyword arguments: "
                         "'function'",
                         decorator);
        } else {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", decorator,
                         keyword);
        }
        return nullptr;
    }
    if (nargs == 0) {  // as python words it for the stand-in's `function` parameter
        PyErr_Format(PyExc_TypeError, "%s() missing 1 required positional argument: 'function'",
                     decorator);
        return nullptr;
    }
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes 1 positional argument but %zd were given",
                     decorator, nargs);
        return nullptr;
    }
    if (!flag(decorator, args[0], flags)) return nullptr;
    return Py_NewRef(args[0]);
}

PyObject* ignore(PyObject*, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    return decorate("ignore", args, PyVectorcall_NARGS(nargsf), kwnames, tracer::kIgnoreSubtree);
}

PyObject* sparse(PyObject*, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    return decorate("sparse", args, PyVectorcall_NARGS(nargsf), kwnames, tracer::kSparse);
}

// ---- the module -----------------------------------------------------------------------

constexpr const char* kModuleDoc =
    "Marks in a program's own trace, and control of what vztrace records.\n\n"
    "Under vztrace this module is built in; under plain python install the stand-in\n"
    "(embed/python in vztrace's sources), which has the same API and does nothing.\n"
    "In a process that is not being recorded every function is a no-op.";

struct FunctionSpec {
    const char* name;
    vectorcallfunc call;
    const char* doc;
};

const FunctionSpec kFunctions[] = {
    {"instant", instant,
     "instant(name, /, **args)\n\nAn instant event on the calling thread's track, with "
     "args as its arguments (a str as it is, anything else by its repr, cut at 512 bytes)."},
    {"counter", counter,
     "counter(name, /, **values)\n\nA sample of counters: each value (an int or a float) "
     "goes to the counter track 'name.key', or 'name' for the key 'value'."},
    {"span", span,
     "span(name, /, **args)\n\nA slice of the program's own choosing on the calling "
     "thread's track, nested with the calls around it: `with vztrace.span(name):`, or "
     "`@vztrace.span(name)` / `@vztrace.span` (named by the function's qualname) around each "
     "call of a function."},
    {"pause", pause,
     "pause()\n\nStops recording in this process (every thread): calls begun while paused "
     "are left out; calls already open keep their end."},
    {"resume", resume, "resume()\n\nRecords again after pause()."},
    {"paused", paused,
     "paused()\n\nA context manager: the recording is paused inside it (resumed on leaving, "
     "unless it was paused before)."},
    {"active", active,
     "active()\n\nTrue when this process is being recorded: not paused, not stopped by "
     "--max-size."},
    {"ignore", ignore,
     "ignore(function)\n\nDecorator: calls of the function (of each function of a class) "
     "and everything they call are left out of the trace."},
    {"sparse", sparse,
     "sparse(function)\n\nDecorator: under `vztrace --log-sparse` only the calls of "
     "functions so marked (and spans) are recorded. Without --log-sparse it changes nothing."},
};

PyModuleDef g_module_def = {
    PyModuleDef_HEAD_INIT, "vztrace", kModuleDoc, -1, nullptr, nullptr, nullptr, nullptr, nullptr,
};

bool ready_types() {
    static bool ready = false;
    if (ready) return true;

    g_function_type.tp_name = "vztrace.function";
    g_function_type.tp_basicsize = sizeof(ApiFunction);
    g_function_type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL;
    g_function_type.tp_vectorcall_offset = offsetof(ApiFunction, vectorcall);
    g_function_type.tp_call = PyVectorcall_Call;
    g_function_type.tp_descr_get = function_get;
    g_function_type.tp_repr = function_repr;
    g_function_type.tp_getset = g_function_getset;

    g_span_type.tp_name = "vztrace.span";
    g_span_type.tp_basicsize = sizeof(SpanObject);
    g_span_type.tp_flags = Py_TPFLAGS_DEFAULT;
    g_span_type.tp_dealloc = span_dealloc;
    g_span_type.tp_repr = span_repr;
    g_span_type.tp_call = span_call;
    g_span_type.tp_doc = "A span: `with` it, or decorate a function with it.";

    g_span_function_type.tp_name = "vztrace.span_function";
    g_span_function_type.tp_basicsize = sizeof(SpanFunction);
    g_span_function_type.tp_flags =
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL;
    g_span_function_type.tp_vectorcall_offset = offsetof(SpanFunction, vectorcall);
    g_span_function_type.tp_call = PyVectorcall_Call;
    g_span_function_type.tp_dealloc = span_function_dealloc;
    g_span_function_type.tp_traverse = span_function_traverse;
    g_span_function_type.tp_clear = span_function_clear;
    g_span_function_type.tp_descr_get = span_function_get;
    g_span_function_type.tp_repr = span_function_repr;
    g_span_function_type.tp_methods = g_span_function_methods;
    g_span_function_type.tp_getset = g_span_function_getset;
    g_span_function_type.tp_dictoffset = offsetof(SpanFunction, dict);
    g_span_function_type.tp_weaklistoffset = offsetof(SpanFunction, weakrefs);

    g_paused_type.tp_name = "vztrace.paused";
    g_paused_type.tp_basicsize = sizeof(PausedObject);
    g_paused_type.tp_flags = Py_TPFLAGS_DEFAULT;
    g_paused_type.tp_dealloc = paused_dealloc;
    g_paused_type.tp_doc = "The recording paused inside a `with` block.";

    for (PyTypeObject* type :
         {&g_function_type, &g_span_type, &g_span_function_type, &g_paused_type}) {
        if (PyType_Ready(type) != 0) return false;
    }
    if (!add_context_methods(g_span_type, span_enter, span_exit) ||
        !add_context_methods(g_paused_type, paused_enter, paused_exit)) {
        return false;
    }
    ready = true;
    return true;
}

PyObject* init_module() {
    if (!ready_types()) return nullptr;
    PyObject* module = PyModule_Create(&g_module_def);
    if (module == nullptr) return nullptr;
    for (const FunctionSpec& spec : kFunctions) {
        PyObject* function = make_function(spec.name, spec.call, spec.doc);
        if (function == nullptr || PyModule_AddObject(module, spec.name, function) != 0) {
            Py_XDECREF(function);
            Py_DECREF(module);
            return nullptr;
        }
    }
    return module;
}

}  // namespace

void register_script_module() { PyImport_AppendInittab("vztrace", init_module); }

}  // namespace vztrace::embed
