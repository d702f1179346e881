#include <Python.h>

#include "tracer/async_tracks.hpp"

#include <unistd.h>

#include <string>
#include <unordered_map>

#include "tracer/call_details.hpp"
#include "tracer/events.hpp"
#include "tracer/hook_state.hpp"
#include "tracer/python_symbols.hpp"

namespace vztrace::tracer::async_tracks {
namespace {

using hooks::g_active;
using hooks::g_session;

PyObject* g_original_run = nullptr;  // Handle._run, the function
PyObject* g_task_types[2] = {};      // asyncio.tasks.Task (C or Python), tasks._PyTask
std::unordered_map<PyObject*, std::string> g_track_of;  // live task -> its track's name
std::unordered_map<std::string, int> g_name_uses;       // track names given so far

// The task that owns the handle's callback (a step or wakeup of a Task), borrowed; null
// for any other callback.
PyObject* task_of(PyObject* handle) {
    PyObject* callback = PyObject_GetAttrString(handle, "_callback");
    PyObject* owner = callback != nullptr ? PyObject_GetAttrString(callback, "__self__") : nullptr;
    Py_XDECREF(callback);
    PyErr_Clear();
    if (owner == nullptr) return nullptr;
    Py_DECREF(owner);  // the handle keeps its callback, which keeps the task
    for (PyObject* type : g_task_types) {
        if (type != nullptr && PyObject_TypeCheck(owner, reinterpret_cast<PyTypeObject*>(type))) {
            return owner;
        }
    }
    return nullptr;
}

// The weak reference to a task has died: its track name may be given again to a task at
// the same address. `self` holds the task's address.
PyObject* task_gone(PyObject* self, PyObject* weakref) {
    g_track_of.erase(static_cast<PyObject*>(PyLong_AsVoidPtr(self)));
    Py_DECREF(weakref);  // the reference kept by track_of
    PyErr_Clear();
    Py_RETURN_NONE;
}

PyMethodDef g_task_gone_def = {"vztrace_task_gone", task_gone, METH_O, nullptr};

std::string text_of(PyObject* object) { return symbols::utf8_of(object); }

// "Task-1 (main)": the task's name at its first step and its coroutine's qualname.
const std::string& track_of(PyObject* task) {
    const auto known = g_track_of.find(task);
    if (known != g_track_of.end()) return known->second;
    details::t_busy = true;  // the program's get_name, if it has one, is not its own call
    PyObject* name = PyObject_CallMethod(task, "get_name", nullptr);
    PyObject* coro = PyObject_CallMethod(task, "get_coro", nullptr);
    PyObject* qualname = coro != nullptr ? PyObject_GetAttrString(coro, "__qualname__") : nullptr;
    details::t_busy = false;
    std::string track = text_of(name) + " (" + text_of(qualname) + ")";
    Py_XDECREF(qualname);
    Py_XDECREF(coro);
    Py_XDECREF(name);
    PyErr_Clear();
    if (const int uses = ++g_name_uses[track]; uses > 1) track += " #" + std::to_string(uses);
    // Forgotten when the task dies (a weak reference kept until then).
    PyObject* address = PyLong_FromVoidPtr(task);
    PyObject* callback = address != nullptr ? PyCFunction_New(&g_task_gone_def, address) : nullptr;
    // The weak reference is released by task_gone.
    [[maybe_unused]] PyObject* weakref =
        callback != nullptr ? PyWeakref_NewRef(task, callback) : nullptr;
    Py_XDECREF(callback);
    Py_XDECREF(address);
    PyErr_Clear();
    return g_track_of.emplace(task, std::move(track)).first->second;
}

// Handle._run(self), bound through an instancemethod.
PyObject* run_handle(PyObject*, PyObject* handle) {
    PyObject* task =
        g_active && g_session != nullptr && ::getpid() == g_session->pid() && !details::t_busy
            ? task_of(handle)
            : nullptr;
    if (task == nullptr) return PyObject_CallOneArg(g_original_run, handle);
    Py_INCREF(task);
    const std::string track = track_of(task);
    events::track_begin(*g_session, track, "running", {});
    PyObject* result = PyObject_CallOneArg(g_original_run, handle);
    if (g_active) events::track_end(*g_session, track, {});
    Py_DECREF(task);
    return result;
}

PyMethodDef g_run_def = {"_run", run_handle, METH_O, nullptr};

// The module as sys.modules holds it (a new reference), or null. Looked up there, not by
// PyImport_GetModule: that one waits for a module that another thread is importing, and
// runs importlib's code to (its module lock, which the importing thread can hold while it
// waits for the thread in the audit hook here: a deadlock; and calls the program never
// made, recorded).
PyObject* loaded_module(const char* module_name) {
    PyObject* modules = PyImport_GetModuleDict();  // borrowed
    PyObject* module = modules != nullptr && PyDict_Check(modules)
                           ? PyDict_GetItemString(modules, module_name)  // borrowed
                           : nullptr;
    PyErr_Clear();
    return module != nullptr && PyModule_Check(module) ? Py_NewRef(module) : nullptr;
}

// What `module` has set as `name` so far (a new reference), or null: from its dictionary,
// since a missing attribute runs the import system's code on 3.13 (the AttributeError's
// text asks the module's spec has_location, a property: 392 calls recorded that the
// program never made, one at each audit event while asyncio was imported).
PyObject* module_global(PyObject* module, const char* name) {
    PyObject* globals = module != nullptr ? PyModule_GetDict(module) : nullptr;  // borrowed
    PyObject* value = globals != nullptr ? PyDict_GetItemString(globals, name) : nullptr;
    PyErr_Clear();
    return Py_XNewRef(value);
}

}  // namespace

bool install_when_loaded() {
    // Once the package has imported its names (asyncio.Task is set after asyncio.tasks has
    // run to its end, when it is the C one).
    PyObject* package = loaded_module("asyncio");
    PyObject* task = module_global(package, "Task");
    Py_XDECREF(package);
    PyErr_Clear();
    if (task == nullptr) return false;
    PyObject* tasks = loaded_module("asyncio.tasks");
    PyObject* events_module = loaded_module("asyncio.events");
    PyObject* handle = tasks != nullptr ? module_global(events_module, "Handle") : nullptr;
    PyObject* run = handle != nullptr ? PyObject_GetAttrString(handle, "_run") : nullptr;
    bool done = false;
    if (run != nullptr && PyFunction_Check(run)) {
        g_task_types[0] = Py_NewRef(task);
        g_task_types[1] = module_global(tasks, "_PyTask");
        for (PyObject*& type : g_task_types) {
            if (type != nullptr && !PyType_Check(type)) Py_CLEAR(type);
        }
        PyErr_Clear();
        PyObject* function = PyCFunction_New(&g_run_def, nullptr);
        PyObject* method = function != nullptr ? PyInstanceMethod_New(function) : nullptr;
        if (method != nullptr && PyObject_SetAttrString(handle, "_run", method) == 0) {
            g_original_run = Py_NewRef(run);
        }
        Py_XDECREF(method);
        Py_XDECREF(function);
        done = true;
    } else if (run != nullptr) {
        done = true;  // not asyncio's own: left alone
    }
    Py_XDECREF(run);
    Py_XDECREF(handle);
    Py_XDECREF(events_module);
    Py_XDECREF(tasks);
    Py_DECREF(task);
    PyErr_Clear();
    return done;
}

}  // namespace vztrace::tracer::async_tracks
