#include <Python.h>

#include "tracer/log_options.hpp"

#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "tracer/async_tracks.hpp"
#include "tracer/call_details.hpp"
#include "tracer/events.hpp"
#include "tracer/hook_state.hpp"
#include "tracer/module_functions.hpp"
#include "tracer/python_symbols.hpp"

namespace vztrace::tracer::log_options {
namespace {

using hooks::g_active;
using hooks::g_session;

bool g_log_gc = false;
bool g_log_print = false;
bool g_log_audit = false;
bool g_log_async = false;
std::vector<std::string> g_audit_events;  // empty: all

bool g_gc_done = false;
bool g_print_done = false;
bool g_async_done = false;

// Whether the recording takes an event now: recording, in the process that began it, and
// not from vztrace's own reprs.
bool recording() {
    return g_active && g_session != nullptr && ::getpid() == g_session->pid() && !details::t_busy;
}

// ---- --log-gc -----------------------------------------------------------------------

SymbolId g_gc_span = 0;
thread_local bool t_in_gc = false;

std::string info_item(PyObject* info, const char* key) {
    PyObject* value = PyDict_Check(info) ? PyDict_GetItemString(info, key) : nullptr;  // borrowed
    if (value == nullptr || !PyLong_Check(value)) return "?";
    const long long number = PyLong_AsLongLong(value);
    if (number == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return "?";
    }
    return std::to_string(number);
}

// gc.callbacks calls it from C (no call event): ("start" | "stop", info).
PyObject* on_gc(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyUnicode_Check(args[0])) Py_RETURN_NONE;
    const bool start = PyUnicode_CompareWithASCIIString(args[0], "start") == 0;
    if (start && recording()) {
        g_gc_span = events::span_begin(*g_session, "gc",
                                       {{"generation", info_item(args[1], "generation")}});
        t_in_gc = true;
    } else if (!start && t_in_gc) {
        t_in_gc = false;
        if (g_active) {
            events::span_end(*g_session, g_gc_span,
                             {{"collected", info_item(args[1], "collected")},
                              {"uncollectable", info_item(args[1], "uncollectable")}});
        }
    }
    Py_RETURN_NONE;
}

PyMethodDef g_gc_def = {"vztrace_gc_callback", reinterpret_cast<PyCFunction>(+on_gc), METH_FASTCALL,
                        nullptr};

void install_gc() {
    use_builtin_module("gc", [](PyObject* gc) {
        PyObject* callbacks = PyObject_GetAttrString(gc, "callbacks");
        PyObject* callback = callbacks != nullptr ? PyCFunction_New(&g_gc_def, nullptr) : nullptr;
        if (callback != nullptr && PyList_Check(callbacks) &&
            PyList_Append(callbacks, callback) == 0) {
            g_gc_done = true;
            // Under --log-sparse the collections stay, as the program's spans do: they are
            // no calls of its (the writer left every one out, --log-gc then did nothing).
            if (g_session->settings().log_sparse) {
                g_session->symbols().add_flags(g_session->symbols().intern("gc"), kSparse);
            }
        }
        Py_XDECREF(callback);
        Py_XDECREF(callbacks);
    });
}

// ---- --log-print ----------------------------------------------------------------------

// The file print writes to, standing in for it: each write goes to the file as it came,
// and its text is kept.
struct PrintCapture {
    PyObject_HEAD PyObject* target;
    std::string* text;  // null once the print has ended
};

PyObject* capture_write(PyObject* self, PyObject* text) {
    auto* capture = reinterpret_cast<PrintCapture*>(self);
    if (capture->text != nullptr && PyUnicode_Check(text) &&
        capture->text->size() <= kMaxReprBytes) {
        // A lone surrogate (a file name's undecodable byte, printed with surrogateescape)
        // lost the whole piece.
        capture->text->append(symbols::utf8_of(text));
    }
    PyObject* write = PyUnicode_InternFromString("write");
    PyObject* result =
        write != nullptr ? PyObject_CallMethodOneArg(capture->target, write, text) : nullptr;
    Py_XDECREF(write);
    return result;
}

PyObject* capture_flush(PyObject* self, PyObject*) {
    return PyObject_CallMethod(reinterpret_cast<PrintCapture*>(self)->target, "flush", nullptr);
}

void capture_dealloc(PyObject* self) {
    PyTypeObject* type = Py_TYPE(self);
    Py_XDECREF(reinterpret_cast<PrintCapture*>(self)->target);
    type->tp_free(self);
    Py_DECREF(type);
}

PyMethodDef g_capture_methods[] = {
    {"write", capture_write, METH_O, nullptr},
    {"flush", capture_flush, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot g_capture_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(capture_dealloc)},
    {Py_tp_methods, g_capture_methods},
    {0, nullptr},
};

PyType_Spec g_capture_spec = {"vztrace.PrintCapture", sizeof(PrintCapture), 0, Py_TPFLAGS_DEFAULT,
                              g_capture_slots};

PyTypeObject* g_capture_type = nullptr;
PyObject* g_original_print = nullptr;

// print(*args, sep=' ', end='\n', file=None, flush=False): python's print with `file`
// wrapped. Without a file to write to (sys.stdout None or gone) python's print decides.
PyObject* print_recorded(PyObject*, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    const Py_ssize_t nkw = kwnames != nullptr ? PyTuple_GET_SIZE(kwnames) : 0;
    if (!recording()) return PyObject_Vectorcall(g_original_print, args, nargsf, kwnames);
    Py_ssize_t file_at = -1;
    for (Py_ssize_t i = 0; i < nkw; ++i) {
        if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, i), "file") == 0) {
            file_at = nargs + i;
        }
    }
    PyObject* file = file_at >= 0 ? args[file_at] : Py_None;
    if (file == Py_None) file = PySys_GetObject("stdout");  // borrowed
    if (file == nullptr || file == Py_None) {
        return PyObject_Vectorcall(g_original_print, args, nargsf, kwnames);
    }
    auto* capture = PyObject_New(PrintCapture, g_capture_type);
    if (capture == nullptr) return nullptr;
    std::string text;
    capture->target = Py_NewRef(file);
    capture->text = &text;
    std::vector<PyObject*> all(args, args + nargs + nkw);
    PyObject* names = Py_XNewRef(kwnames);
    if (file_at >= 0) {
        all[static_cast<std::size_t>(file_at)] = reinterpret_cast<PyObject*>(capture);
    } else {
        all.push_back(reinterpret_cast<PyObject*>(capture));
        PyObject* more = PyTuple_New(nkw + 1);
        for (Py_ssize_t i = 0; more != nullptr && i < nkw; ++i) {
            PyTuple_SET_ITEM(more, i, Py_NewRef(PyTuple_GET_ITEM(kwnames, i)));
        }
        PyObject* file_name = more != nullptr ? PyUnicode_InternFromString("file") : nullptr;
        if (file_name == nullptr) Py_CLEAR(more);
        if (more != nullptr) PyTuple_SET_ITEM(more, nkw, file_name);
        Py_XDECREF(names);
        names = more;
    }
    PyObject* result = nullptr;
    if (names != nullptr) {
        result =
            PyObject_Vectorcall(g_original_print, all.data(), static_cast<size_t>(nargs), names);
    }
    capture->text = nullptr;
    Py_DECREF(capture);
    Py_XDECREF(names);
    if (result != nullptr && g_active) {
        events::instant(*g_session, "print", {{"text", details::cut(std::move(text))}});
    }
    return result;
}

PyMethodDef g_print_def = {"print", reinterpret_cast<PyCFunction>(+print_recorded),
                           METH_FASTCALL | METH_KEYWORDS, nullptr};

void install_print() {
    if (g_capture_type == nullptr) {
        g_capture_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&g_capture_spec));
        if (g_capture_type == nullptr) {
            PyErr_Clear();
            return;
        }
    }
    PyObject* name = PyUnicode_FromString("builtins");
    PyObject* builtins = name != nullptr ? PyImport_GetModule(name) : nullptr;
    Py_XDECREF(name);
    PyErr_Clear();
    if (builtins == nullptr) return;  // not yet
    PyObject* current = PyObject_GetAttrString(builtins, "print");
    if (current != nullptr && PyCFunction_Check(current)) {
        Py_XDECREF(replace_module_function(builtins, "builtins", g_print_def, g_original_print));
    }
    g_print_done = true;  // done, or never possible (print replaced by then)
    Py_XDECREF(current);
    Py_DECREF(builtins);
    PyErr_Clear();
}

// ---- --log-audit and the set-up ----------------------------------------------------------

bool audit_event_wanted(const char* event) {
    if (g_audit_events.empty()) return true;
    for (const std::string& name : g_audit_events) {
        if (name == event) return true;
    }
    return false;
}

thread_local bool t_setting_up = false;

void set_up() {
    if (t_setting_up) return;
    t_setting_up = true;
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    if (g_log_print && !g_print_done) install_print();
    if (g_log_gc && !g_gc_done) install_gc();
    if (g_log_async && !g_async_done) g_async_done = async_tracks::install_when_loaded();
    PyErr_Clear();
    PyErr_Restore(type, value, traceback);
    t_setting_up = false;
}

int audit_hook(const char* event, PyObject* args, void*) {
    if (!g_active || t_setting_up || details::t_busy) return 0;
    // A subinterpreter's events are its own: its calls are not recorded either, and what
    // is set up here belongs to the main interpreter's modules.
    if (VZ_UNLIKELY(!hooks::in_main_interpreter())) return 0;
    if (VZ_UNLIKELY(!(g_gc_done || !g_log_gc) || !(g_print_done || !g_log_print) ||
                    !(g_async_done || !g_log_async))) {
        if (g_session != nullptr && ::getpid() == g_session->pid()) set_up();
    }
    // An instant made while paused is left out: its arguments' reprs are not taken.
    if (g_log_audit && recording() && g_session->keeps_what_begins_now() &&
        audit_event_wanted(event)) {
        std::string text = args != nullptr ? details::repr_of(args) : "()";
        if (g_active) events::instant(*g_session, event, {{"args", std::move(text)}});
    }
    return 0;
}

}  // namespace

void prepare(const TraceSettings& settings) {
    g_log_gc = settings.log_gc;
    g_log_print = settings.log_print;
    g_log_audit = settings.log_audit;
    g_log_async = settings.log_async;
    g_audit_events = settings.log_audit_events;
    details::configure(settings);
    if (g_log_gc || g_log_print || g_log_audit || g_log_async) {
        PySys_AddAuditHook(audit_hook, nullptr);
    }
}

void program_starts() {
    if (g_active && g_session != nullptr && ::getpid() == g_session->pid()) set_up();
}

}  // namespace vztrace::tracer::log_options
