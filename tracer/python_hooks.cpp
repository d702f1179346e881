#include <Python.h>

#include "tracer/python_hooks.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "embed/setup_error.hpp"
#include "tracer/call_details.hpp"
#include "tracer/frame_hook.hpp"
#include "tracer/hook_state.hpp"
#include "tracer/log_options.hpp"
#include "tracer/module_functions.hpp"
#include "tracer/monitoring_hooks.hpp"
#include "tracer/next_image.hpp"
#include "tracer/one_line.hpp"
#include "tracer/profile_hooks.hpp"
#include "tracer/program_profilers.hpp"
#include "tracer/python_symbols.hpp"
#include "tracer/root_registry.hpp"
#include "tracer/terminating_signals.hpp"

#ifndef VZTRACE_VERSION
#error "VZTRACE_VERSION must be defined by the build"
#endif

namespace vztrace::tracer {
namespace {

using hooks::g_active;
using hooks::g_session;

constexpr bool kUseMonitoring = PY_VERSION_HEX >= 0x030C0000;

bool g_installed = false;
bool g_threads_wrapped = false;
bool g_exit_wrapped = false;
bool g_trace_failed = false;
bool g_program_started = false;
// Whether python found the program (the script, the module, the code) and began it. When
// it did not (`vztrace run nope.py`), nothing is written over the user's file.
bool g_target_started = false;
// Whether code of the program's own ran before python began it: the package `-m pkg`
// names, whose __init__ python runs before it looks for pkg.__main__ (one that exits, or
// raises, ends the run there). Python's search, not the program, under --no-startup; but
// the program's code, whose trace is written (it was abandoned, with "the program did not
// start", found by hunt AI).
bool g_program_code_ran = false;
std::uint64_t g_stop_ticks = 0;
// The system refused memory inside a callback: recording stopped there for good (Session::
// stop_for_memory); the hooks stay, idle, until stop_recording() removes them.
bool g_memory_stopped = false;
bool g_hooks_idle = false;

void stop_for_memory() {
    if (!g_active) return;
    if (g_stop_ticks == 0) g_stop_ticks = TickClock::now();
    g_memory_stopped = true;
    g_hooks_idle = true;
    g_active = false;
}

// os.execv or os.execve is under way (their stand-ins): the GIL guards it.
int g_exec_depth = 0;
bool g_let_go_after_resume = false;  // see after_failed_exec
SymbolId g_startup_symbol = 0;
// The program's threads still running: the main thread and those started through
// _thread. A process forked from a thread other than the main one ends, without
// finalizing, when its last thread returns.
std::atomic<int> g_program_threads{1};

// ---- ending early, forking, process names ---------------------------------------------

void stop_recording();

// An attribute of `object` as its instance holds it (a new reference, or nullptr with no
// error set), without running the program's code: not its class's properties (threading
// and multiprocessing keep `name` in `_name`, which a subclass may override), nor its
// __getattr__.
PyObject* stored_attribute(PyObject* object, const char* name) {
    PyObject* key = PyUnicode_InternFromString(name);
    PyObject* value = key != nullptr ? PyObject_GenericGetAttr(object, key) : nullptr;
    Py_XDECREF(key);
    if (value == nullptr) PyErr_Clear();
    return value;
}

// `attribute` of `module` if the program has imported it (vztrace imports nothing for it),
// else null; no error is left set.
PyObject* imported_attribute(const char* module, const char* attribute) {
    PyObject* name = PyUnicode_FromString(module);
    PyObject* imported = name != nullptr ? PyImport_GetModule(name) : nullptr;
    Py_XDECREF(name);
    PyObject* value = imported != nullptr ? PyObject_GetAttrString(imported, attribute) : nullptr;
    Py_XDECREF(imported);
    PyErr_Clear();
    return value;
}

// multiprocessing names its workers ("ForkPoolWorker-3", "SpawnProcess-1"): the process
// takes that name once it has one. Needs the interpreter; multiprocessing is not imported.
void refresh_process_name() {
    PyObject* process = imported_attribute("multiprocessing.process", "_current_process");
    PyObject* process_name = process != nullptr ? stored_attribute(process, "_name") : nullptr;
    if (process_name != nullptr && PyUnicode_Check(process_name)) {
        // Any text: a lone surrogate or a NUL lost the name, or cut it.
        const std::string text = symbols::utf8_of(process_name);
        if (text != "MainProcess") g_session->set_process_name(text);
    }
    Py_XDECREF(process_name);
    Py_XDECREF(process);
    PyErr_Clear();
}

// How the recording ends: the program ran to its end (python found nothing to run, or ran
// it), or the process leaves early (os._exit, exec, a signal, its last thread), when what
// ran so far is kept even if the program proper had not begun (`-m pkg.mod` killed while
// pkg/__init__ runs).
enum class Ending { kProgramEnded, kEarly, kExec, kExecOfAnother };

// Set while a thread writes the trace: an exit from C on another thread then waits for the
// writer to end the process (see before_c_exit).
std::atomic<bool> g_writing_trace{false};
std::atomic<bool> g_exit_from_c{false};  // exit() from C writes a trace whose recording had stopped

// Writes this process's trace or part, or nothing when python never began the program and
// this process would write the user's file. Needs no interpreter.
void write_recording(Ending ending) {
    struct Writing {
        Writing() { g_writing_trace.store(true); }
        ~Writing() { g_writing_trace.store(false); }
    } writing;
    const ProcessRole role = g_session->plan().role;
    const bool own_file = (role == ProcessRole::kOwnFile || role == ProcessRole::kRoot) &&
                          !g_session->plan().continued;
    if (!g_target_started && !g_program_code_ran && own_file && ending == Ending::kProgramEnded) {
        g_session->abandon();
        return;
    }
    Session::Ending finishing = Session::Ending::kEnd;
    if (ending == Ending::kExec) {
        finishing = g_exec_depth > 0 ? Session::Ending::kExecMayFail : Session::Ending::kExec;
    } else if (ending == Ending::kExecOfAnother) {
        finishing = Session::Ending::kExecOfAnother;
    }
    if (!g_session->finish(g_stop_ticks, finishing)) g_trace_failed = true;
}

// The recording is written by one thread only; one that comes second waits for the first
// to end the process (only a terminating signal writes while another thread could).
void write_once(Ending ending) {
    if (!signals::begin_finishing()) {
        while (true) ::pause();
    }
    write_recording(ending);
    signals::end_finishing();
}

// Names the threads still alive as the program last named them (threading's _active):
// a thread's name is otherwise taken when it ends.
void name_live_threads() {
    PyObject* active = imported_attribute("threading", "_active");
    if (active != nullptr && PyDict_Check(active)) {
        PyObject *key = nullptr, *thread = nullptr;
        Py_ssize_t pos = 0;
        const unsigned long self = PyThread_get_thread_ident();
        while (PyDict_Next(active, &pos, &key, &thread)) {
            PyObject* native_id = stored_attribute(thread, "_native_id");
            PyObject* thread_name = stored_attribute(thread, "_name");
            // The calling thread by its kernel id: in a forked child, threading's native id
            // is still the forking thread's in the parent (threading._after_fork keeps it),
            // and the child's thread was named as the parent's main thread (hunt AR).
            const bool current = PyLong_Check(key) && PyLong_AsUnsignedLong(key) == self;
            if (native_id != nullptr && PyLong_Check(native_id) && thread_name != nullptr &&
                PyUnicode_Check(thread_name)) {
                g_session->name_thread(
                    current ? current_tid() : PyLong_AsUnsignedLongLong(native_id),
                    symbols::utf8_of(thread_name));
            }
            Py_XDECREF(native_id);
            Py_XDECREF(thread_name);
            PyErr_Clear();
        }
    }
    Py_XDECREF(active);
    PyErr_Clear();
}

// The process is about to end (or become another program) without finalizing: its
// recording ends here, with the interpreter still alive. `ending`: kEarly, kExec (the
// next image may be vztrace's) or kExecOfAnother (a root's last).
void finish_now(Ending ending = Ending::kEarly) {
    if (g_session == nullptr || ::getpid() != g_session->pid()) return;
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    name_live_threads();  // os._exit, a signal: no thread ends by the usual way
    refresh_process_name();
    if (ending == Ending::kExec && g_exec_depth > 0) {
        // The exec may fail (resume_after_failed_exec): the hooks stay, idle.
        if (g_stop_ticks == 0) g_stop_ticks = TickClock::now();
        g_active = false;
    } else {
        stop_recording();
    }
    write_once(ending);
    PyErr_Restore(type, value, traceback);
}

// The exec the recording ended for has failed, and the program goes on: so does the
// recording, as if it had not ended (the part left for the next image is taken back).
void resume_after_failed_exec() {
    if (g_session == nullptr || ::getpid() != g_session->pid() || g_active || g_trace_failed) {
        return;
    }
    const bool resumed = g_session->resume_after_exec();
    // Also a root whose recording has ended: its trace is still to be written, by a
    // terminating signal too.
    if (!g_session->finished()) signals::recording_resumed();
    // Out of memory before the exec: the recording stays stopped where it stopped.
    if (!resumed || g_memory_stopped) return;
    g_stop_ticks = 0;
    g_active = true;
}

// A terminating signal after the program's exit work: the recording has stopped, and is
// written from vztrace's helper thread, without the GIL.
void finish_stopped() {
    if (g_session == nullptr || ::getpid() != g_session->pid()) return;
    write_recording(Ending::kProgramEnded);
}

// os._exit (how fork-started pool workers leave): keep the trace, then exit. Its status
// is read first, once (an __index__ of the program's runs once): os._exit called wrongly
// raises, exits nothing, and the recording goes on (the original says what is wrong).
PyObject* g_original_exit = nullptr;
PyObject* exit_now(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"status", nullptr};
    int status = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "i:_exit", const_cast<char**>(keywords),
                                     &status)) {
        PyErr_Clear();
        return PyObject_Call(g_original_exit, args, kwargs);
    }
    finish_now();
    // The program succeeded but its trace is lost: the status says so, as at a return.
    if (status == 0 && !trace_written()) status = static_cast<int>(ExitCode::kTraceNotWritten);
    return PyObject_CallFunction(g_original_exit, "i", status);
}
PyMethodDef g_exit_def = {"_exit", reinterpret_cast<PyCFunction>(+exit_now),
                          METH_VARARGS | METH_KEYWORDS, nullptr};

// os.execv and os.execve (os.execl, os.execvp and the others call them): the recording
// ends in the C exec itself (execve below), once every audit hook of the program's has
// run; when the exec fails (OSError, or an audit hook refused it), it goes on.
PyObject* g_original_execv = nullptr;
PyObject* g_original_execve = nullptr;
PyObject* exec_through(PyObject* original, PyObject* args, PyObject* kwargs) {
    ++g_exec_depth;
    PyObject* result = PyObject_Call(original, args, kwargs);
    --g_exec_depth;
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    resume_after_failed_exec();
    if (g_let_go_after_resume) {
        g_let_go_after_resume = false;
        signals::let_go_after_exec();
    }
    PyErr_Restore(type, value, traceback);
    return result;
}
PyObject* execv_now(PyObject*, PyObject* args, PyObject* kwargs) {
    return exec_through(g_original_execv, args, kwargs);
}
PyObject* execve_now(PyObject*, PyObject* args, PyObject* kwargs) {
    return exec_through(g_original_execve, args, kwargs);
}
PyMethodDef g_execv_def = {"execv", reinterpret_cast<PyCFunction>(+execv_now),
                           METH_VARARGS | METH_KEYWORDS, nullptr};
PyMethodDef g_execve_def = {"execve", reinterpret_cast<PyCFunction>(+execve_now),
                            METH_VARARGS | METH_KEYWORDS, nullptr};

// os.fork: vztrace's threads start again in the parent once it has returned, when the
// program had no thread of its own (see after_fork_parent).
PyObject* g_original_fork = nullptr;
bool g_in_fork = false;      // in os.fork's stand-in (the GIL guards both)
bool g_threads_due = false;  // vztrace's threads wait for os.fork to return
void restart_threads_after_fork();
PyObject* fork_now(PyObject*, PyObject* args, PyObject* kwargs) {
    g_in_fork = true;
    PyObject* result = PyObject_Call(g_original_fork, args, kwargs);
    g_in_fork = false;
    if (g_threads_due) {
        g_threads_due = false;
        restart_threads_after_fork();
    }
    return result;
}
PyMethodDef g_fork_def = {"fork", reinterpret_cast<PyCFunction>(+fork_now),
                          METH_VARARGS | METH_KEYWORDS, nullptr};

// Around os.fork(): see terminating_signals.hpp.
PyObject* before_fork(PyObject*, PyObject*) {
    if (!g_program_started) Py_RETURN_NONE;  // see register_at_fork
    signals::before_fork();
    if (g_session != nullptr) g_session->pause_writer();
    Py_RETURN_NONE;
}
PyMethodDef g_before_fork_def = {"vztrace_before_fork", before_fork, METH_NOARGS, nullptr};

void restart_threads_after_fork() {
    signals::start_helper_after_fork();
    if (g_session != nullptr) g_session->resume_writer();
}

// With no thread of the program's, vztrace's (the signal helper, the writer) start again
// only once os.fork() has returned: 3.13 counts the process's threads after the at-fork
// hooks, to warn about a multi-threaded fork, and a hook of the program's that runs Python
// code runs pending calls too. os.fork's stand-in starts them; a pending call does for
// other forks (os.forkpty). Meanwhile a full chunk is written by the recording thread.
PyObject* after_fork_parent(PyObject*, PyObject*) {
    if (!g_program_started) Py_RETURN_NONE;
    signals::after_fork_in_parent();
    if (g_program_threads.load() > 1) {  // python warns anyway
        restart_threads_after_fork();
    } else if (g_in_fork) {
        g_threads_due = true;
    } else {
        Py_AddPendingCall(
            [](void*) {
                restart_threads_after_fork();
                return 0;
            },
            nullptr);
    }
    Py_RETURN_NONE;
}
PyMethodDef g_after_fork_parent_def = {"vztrace_after_fork_parent", after_fork_parent, METH_NOARGS,
                                       nullptr};

// The Python calls open on this thread, outermost first (at os.fork's at-fork callbacks,
// which are called from C: those that called os.fork).
std::vector<SymbolId> open_python_calls() {
    std::vector<SymbolId> calls;
    PyFrameObject* frame = PyEval_GetFrame();  // borrowed
    Py_XINCREF(frame);
    while (frame != nullptr) {
        PyCodeObject* code = PyFrame_GetCode(frame);
        calls.push_back(symbols::of_code(reinterpret_cast<PyObject*>(code)));
        Py_DECREF(code);
        PyFrameObject* back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    std::reverse(calls.begin(), calls.end());
    return calls;
}

// The child starts its own recording, then takes the signals held back since the fork.
PyObject* after_fork_child(PyObject*, PyObject*) {
    if (!g_program_started) Py_RETURN_NONE;
    g_program_threads.store(1);
    if (g_session != nullptr && g_installed) {
        const bool was_recording = g_stop_ticks == 0;
        const bool traced = g_session->restart_after_fork(open_python_calls());
        g_active = traced && was_recording;
        if (!traced) signals::uninstall();
        // A child's part is the root's to read; a file of its own (--pid-suffix) is named.
        const bool own_file = g_session->plan().role != ProcessRole::kChild;
        signals::trace_streamed_to(own_file ? g_session->stream_file() : std::string());
    }
    signals::after_fork_in_child();
    Py_RETURN_NONE;
}
PyMethodDef g_after_fork_def = {"vztrace_after_fork_child", after_fork_child, METH_NOARGS, nullptr};

// os.register_at_fork's callbacks, registered once posix is imported (by the import
// system, before site runs: see wrap_exit), else at the program's start. CPython calls the
// after_in_child callbacks in the order registered: registered at the program's start,
// vztrace's came after those of the start-up (a sitecustomize's, a .pth file's, 3.11's
// threading._after_fork), whose calls in the child were not recorded. They act only once
// the program has started: the start-up's forks are not traced.
bool g_at_fork_registered = false;
void register_at_fork(bool may_import) {
    if (g_at_fork_registered) return;
    PyObject* name = PyUnicode_FromString("posix");
    PyObject* posix = nullptr;
    if (name != nullptr) {
        posix = may_import ? PyImport_Import(name) : PyImport_GetModule(name);
    }
    PyObject* before = PyCFunction_New(&g_before_fork_def, nullptr);
    PyObject* in_parent = PyCFunction_New(&g_after_fork_parent_def, nullptr);
    PyObject* in_child = PyCFunction_New(&g_after_fork_def, nullptr);
    if (posix != nullptr && before != nullptr && in_parent != nullptr && in_child != nullptr) {
        PyObject* kwargs = Py_BuildValue("{s:O,s:O,s:O}", "before", before, "after_in_parent",
                                         in_parent, "after_in_child", in_child);
        PyObject* noargs = PyTuple_New(0);
        PyObject* function = PyObject_GetAttrString(posix, "register_at_fork");
        if (function != nullptr && kwargs != nullptr && noargs != nullptr) {
            PyObject* result = PyObject_Call(function, noargs, kwargs);
            g_at_fork_registered = result != nullptr;
            Py_XDECREF(result);
        }
        Py_XDECREF(function);
        Py_XDECREF(noargs);
        Py_XDECREF(kwargs);
    }
    Py_XDECREF(in_child);
    Py_XDECREF(in_parent);
    Py_XDECREF(before);
    Py_XDECREF(posix);
    Py_XDECREF(name);
    PyErr_Clear();
}

void install_process_handlers() {
    register_at_fork(true);
    g_session->hurry_children_when([] { return signals::death_pending() || g_exit_from_c.load(); });
    signals::program_starts(
        [] {
            g_session->hurry_children();
            finish_now();
        },
        [] {
            g_session->hurry_children();
            finish_stopped();
        });
}

// posix._exit and posix.fork are replaced before `os` copies them (os does `from posix
// import *`); if os is already loaded, its copies are replaced too. The stand-ins look as
// the originals do: their module, __self__, doc and signature.
void wrap_exit() {
    const std::pair<PyMethodDef*, PyObject**> stand_ins[] = {{&g_exit_def, &g_original_exit},
                                                             {&g_fork_def, &g_original_fork},
                                                             {&g_execv_def, &g_original_execv},
                                                             {&g_execve_def, &g_original_execve}};
    for (const char* module_name : {"posix", "os"}) {
        PyObject* name = PyUnicode_FromString(module_name);
        PyObject* module = name != nullptr ? PyImport_GetModule(name) : nullptr;
        Py_XDECREF(name);
        PyErr_Clear();
        if (module == nullptr) {
            if (std::string_view(module_name) == "posix") return;  // not yet: next event
            continue;
        }
        if (std::string_view(module_name) == "posix") register_at_fork(false);
        for (const auto& [def, original] : stand_ins) {
            PyObject* current = PyObject_GetAttrString(module, def->ml_name);
            if (current != nullptr && PyCFunction_Check(current) &&
                reinterpret_cast<PyCFunctionObject*>(current)->m_ml != def) {
                const auto* function = reinterpret_cast<PyCFunctionObject*>(current);
                if (*original == nullptr) *original = Py_NewRef(current);
                def->ml_doc = function->m_ml->ml_doc;
                PyObject* wrapper = PyCFunction_NewEx(def, function->m_self, function->m_module);
                if (wrapper != nullptr && PyObject_SetAttrString(module, def->ml_name, wrapper)) {
                    PyErr_Clear();
                }
                Py_XDECREF(wrapper);
            }
            Py_XDECREF(current);
            PyErr_Clear();
        }
        Py_DECREF(module);
    }
    g_exit_wrapped = g_original_exit != nullptr;
}

// ---- thread names and (3.11) per-thread profile hooks -------------------------------

// The name a thread has in the program, from the threading.Thread whose bound
// `_bootstrap` is the thread's function.
void name_thread_from(PyObject* function) {
    if (!PyMethod_Check(function)) return;
    PyObject* name = stored_attribute(PyMethod_GET_SELF(function), "_name");
    if (name != nullptr && PyUnicode_Check(name)) {
        g_session->name_thread(current_tid(), symbols::utf8_of(name));
    }
    Py_XDECREF(name);
    PyErr_Clear();
}

// Runs first in every new thread; `self` is the thread's real function. The thread was
// counted by the thread that started it (a count taken here could reach zero while a
// thread that is still starting is not yet counted).
PyObject* thread_bootstrap(PyObject* self, PyObject* const* args, size_t nargsf,
                           PyObject* kwnames) {
    if (!kUseMonitoring && g_active && profile::in_use()) profile::attach_current_thread();
    PyObject* result = PyObject_Vectorcall(self, args, nargsf, kwnames);
    if (result == nullptr && !PyErr_ExceptionMatches(PyExc_SystemExit)) {
        // Said here as _thread says it (SystemExit it ignores), naming the program's
        // function: said by _thread, it named this bootstrap.
#if PY_VERSION_HEX >= 0x030D0000
        PyErr_FormatUnraisable("Exception ignored in thread started by %R", self);
#else
        _PyErr_WriteUnraisableMsg("in thread started by", self);
#endif
        result = Py_NewRef(Py_None);
    }
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    if (g_session != nullptr) name_thread_from(self);  // the name the program last gave it
    // Nothing more is recorded on this thread: a thread that has ended holds no chunk.
    if (g_session != nullptr && g_active) g_session->thread_ends();
    if (g_program_threads.fetch_sub(1) == 1) {
        // The last of the program's threads: the process ends when it returns, without
        // finalizing (python's own behaviour in a child forked from a thread). The trace
        // is kept, and vztrace's helper thread must not keep the process alive.
        finish_now();
        signals::stop_helper();
    }
    PyErr_Restore(type, value, traceback);
    return result;
}

PyMethodDef g_bootstrap_def = {"vztrace_thread_bootstrap",
                               reinterpret_cast<PyCFunction>(+thread_bootstrap),
                               METH_FASTCALL | METH_KEYWORDS, nullptr};

// _thread.start_new_thread(function, args[, kwargs]) and, on 3.13,
// _thread.start_joinable_thread(function, handle=None, daemon=True): the first argument
// is replaced by the bootstrap, which calls the original function.
PyObject* g_original_start_new_thread = nullptr;
PyObject* g_original_start_joinable_thread = nullptr;

PyObject* start_thread_through(PyObject* original, PyObject* args, PyObject* kwargs) {
    // No function to call: _thread says what is wrong (the bootstrap is callable).
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) < 1 ||
        PyCallable_Check(PyTuple_GET_ITEM(args, 0)) == 0) {
        return PyObject_Call(original, args, kwargs);
    }
    PyObject* bootstrap = PyCFunction_New(&g_bootstrap_def, PyTuple_GET_ITEM(args, 0));
    if (bootstrap == nullptr) return nullptr;
    PyObject* new_args = PyTuple_New(PyTuple_GET_SIZE(args));
    if (new_args == nullptr) {
        Py_DECREF(bootstrap);
        return nullptr;
    }
    PyTuple_SET_ITEM(new_args, 0, bootstrap);
    for (Py_ssize_t i = 1; i < PyTuple_GET_SIZE(args); ++i) {
        PyTuple_SET_ITEM(new_args, i, Py_NewRef(PyTuple_GET_ITEM(args, i)));
    }
    g_program_threads.fetch_add(1);
    PyObject* result = PyObject_Call(original, new_args, kwargs);
    if (result == nullptr) g_program_threads.fetch_sub(1);  // not started
    Py_DECREF(new_args);
    return result;
}

PyObject* start_new_thread(PyObject*, PyObject* args, PyObject* kwargs) {
    return start_thread_through(g_original_start_new_thread, args, kwargs);
}
PyObject* g_original_start_new = nullptr;  // start_new_thread's old alias (3.11-3.13)
PyObject* start_new(PyObject*, PyObject* args, PyObject* kwargs) {
    return start_thread_through(g_original_start_new, args, kwargs);
}
PyObject* start_joinable_thread(PyObject*, PyObject* args, PyObject* kwargs) {
    return start_thread_through(g_original_start_joinable_thread, args, kwargs);
}

PyMethodDef g_start_new_thread_def = {"start_new_thread",
                                      reinterpret_cast<PyCFunction>(+start_new_thread),
                                      METH_VARARGS | METH_KEYWORDS, nullptr};
PyMethodDef g_start_new_def = {"start_new", reinterpret_cast<PyCFunction>(+start_new),
                               METH_VARARGS | METH_KEYWORDS, nullptr};
PyMethodDef g_start_joinable_thread_def = {"start_joinable_thread",
                                           reinterpret_cast<PyCFunction>(+start_joinable_thread),
                                           METH_VARARGS | METH_KEYWORDS, nullptr};

// Puts each stand-in (made from its definition; the function it replaces kept in
// `*original`) in the place of its function of `module_name`, when the module is loaded
// (nothing is imported). Returns whether it was.
bool stand_in_for(const char* module_name,
                  std::initializer_list<std::pair<PyMethodDef*, PyObject**>> stand_ins) {
    PyObject* name = PyUnicode_FromString(module_name);
    PyObject* module = name != nullptr ? PyImport_GetModule(name) : nullptr;
    Py_XDECREF(name);
    PyErr_Clear();
    if (module == nullptr) return false;
    for (const auto& [def, original] : stand_ins) {
        Py_XDECREF(replace_module_function(module, module_name, *def, *original));
    }
    Py_DECREF(module);
    PyErr_Clear();
    return true;
}

// `_thread` is loaded by importlib's bootstrap, before `threading` copies its functions.
void wrap_thread_module() {
    g_threads_wrapped = stand_in_for(
        "_thread", {{&g_start_new_thread_def, &g_original_start_new_thread},
                    {&g_start_new_def, &g_original_start_new},
                    {&g_start_joinable_thread_def, &g_original_start_joinable_thread}});
}

// sys.audit: with no audit hook installed, python's returns at once, before it looks at
// the event; with one (vztrace's own, always), it refuses an event that is not a str
// (TypeError) or not UTF-8 (a lone surrogate: UnicodeEncodeError). Until a hook of anyone
// else's comes (the "sys.addaudithook" event each addition raises first), such an event
// is nothing, as under python.
bool g_other_audit_hooks = false;
PyObject* g_original_audit = nullptr;
PyObject* audit(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs >= 1 && !g_other_audit_hooks) {
        const bool named = PyUnicode_Check(args[0]) && PyUnicode_AsUTF8(args[0]) != nullptr;
        if (!named) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
    }
    return PyObject_Vectorcall(g_original_audit, args, static_cast<std::size_t>(nargs), nullptr);
}
PyMethodDef g_audit_def = {
    "audit", reinterpret_cast<PyCFunction>(+audit), METH_FASTCALL,
    "audit(event, *args)\n\nPasses the event to any audit hooks that are attached."};

// sys.activate_stack_trampoline and sys.deactivate_stack_trampoline (3.12+, python's perf
// support) refuse when a frame-evaluation function is in the slot. To activate, the frame
// hook gives way first, as it does to any function of the program's; to deactivate a
// trampoline that cannot be active (the hook holds the slot) is nothing, as under python.
PyObject* g_original_activate_trampoline = nullptr;
PyObject* g_original_deactivate_trampoline = nullptr;
PyObject* activate_trampoline(PyObject*, PyObject* args, PyObject* kwargs) {
    if (frame_hook::live()) frame_hook::give_way("the program activated perf's trampoline");
    return PyObject_Call(g_original_activate_trampoline, args, kwargs);
}
PyObject* deactivate_trampoline(PyObject*, PyObject* args, PyObject* kwargs) {
    const bool no_arguments =
        PyTuple_GET_SIZE(args) == 0 && (kwargs == nullptr || PyDict_GET_SIZE(kwargs) == 0);
    if (frame_hook::live() && no_arguments) Py_RETURN_NONE;
    return PyObject_Call(g_original_deactivate_trampoline, args, kwargs);
}
PyMethodDef g_activate_trampoline_def = {"activate_stack_trampoline",
                                         reinterpret_cast<PyCFunction>(+activate_trampoline),
                                         METH_VARARGS | METH_KEYWORDS, nullptr};
PyMethodDef g_deactivate_trampoline_def = {"deactivate_stack_trampoline",
                                           reinterpret_cast<PyCFunction>(+deactivate_trampoline),
                                           METH_VARARGS | METH_KEYWORDS, nullptr};

// ---- start and end -------------------------------------------------------------------

void register_at_exit();

// Python frames through the frame hook where asked (auto, frame) and it can be had; C
// calls, and Python frames otherwise, through sys.monitoring (3.12+) or the profile hook.
void install() {
    if (!symbols::init()) return;
    g_installed = true;  // before anything that could raise another audit event
    const HookChoice choice = g_session->settings().hook;
    std::string why_not;
    const bool c_calls = hooks::g_record_c_calls;
    // auto: the frame hook when C calls are not recorded. With them it would only add to
    // what their mechanism costs: the profile hook (3.11) is called at every Python call
    // anyway, and on 3.12+ CALL fires at every call site, and C_RETURN too once a Python
    // call is no longer inlined (bench/README.md has the numbers).
    // --log-func-args and the like: callbacks of their own (call_details.hpp), which the
    // frame hook has not (prepare_tracing refuses --hook frame with them).
    const bool detailed = details::wanted(g_session->settings());
    const bool by_frame_hook =
        (choice == HookChoice::kFrame || (choice == HookChoice::kAuto && !c_calls && !detailed)) &&
        frame_hook::install(choice == HookChoice::kFrame, why_not);
    std::string hook;
    if (kUseMonitoring) {
        if (!monitoring::install(!by_frame_hook, c_calls, detailed, hook)) {
            if (by_frame_hook) frame_hook::uninstall();
            g_installed = false;  // sys.monitoring not ready: try at the next event
            return;
        }
    } else {
        hook = "PyEval_SetProfile";
        profile::set_detailed(detailed);
        if (by_frame_hook) profile::set_python_frames(profile::PythonFrames::kIgnore);
        if (!by_frame_hook || c_calls) profile::attach_current_thread();
        if (details::g_wanted.exception) {
            std::string companion_not;
            hook += frame_hook::install_companion(companion_not)
                        ? "; exception texts through a frame-evaluation companion (PEP 523)"
                        : "; no exception texts (" + companion_not + ")";
        }
    }
    stand_in_for("sys", {{&g_audit_def, &g_original_audit}});
    if (by_frame_hook) {
        stand_in_for("sys", {{&g_activate_trampoline_def, &g_original_activate_trampoline},
                             {&g_deactivate_trampoline_def, &g_original_deactivate_trampoline}});
        hook = c_calls ? "frame hook (PEP 523); C calls: " + hook : "frame hook (PEP 523)";
        if (*frame_hook::kMissesCalls != '\0') {
            g_session->info().hook_misses = frame_hook::kMissesCalls;
            hook += std::string(" (not exact: ") + frame_hook::kMissesCalls + ")";
        }
    } else if (!why_not.empty()) {
        hook += " (frame hook not used: " + why_not + ")";
    }
    g_session->info().hook = hook;
    g_active = true;
    register_at_exit();
    program_profilers::install();
    // --no-startup: what runs before the program's own code is left out (the writer drops
    // the calls begun in this window).
    if (g_session->settings().no_startup)
        g_session->pauses().pause(TickClock::now(), PauseWindows::Callees::kKept);
    g_startup_symbol =
        g_session->symbols().add("python start-up (site, .pth files, sitecustomize)");
    g_session->current_buffer().append(TickClock::now(), g_startup_symbol, EventKind::kEnter);
}

// Python found the program once it runs its code: -c and `-` (code python reads) always;
// a script or a module when python executes code with __main__ prepared for it
// (`__file__` set for a script, `__spec__` for runpy's modules, directories and zip
// files). Imports that come first (runpy's own, a package's __init__ under -m pkg.mod)
// leave __main__ as it was.
void target_starts() {
    g_target_started = true;
    // --no-startup: the program's first line is here, not where python began to look for it
    // (a script's path probed by the import system, runpy's imports for -m).
    if (g_active && g_session->settings().no_startup) g_session->pauses().resume(TickClock::now());
}

// -c: python announces the command (cpython.run_command), then compiles it (3.13 first
// imports linecache to keep its text), then executes it: the program starts there, at the
// exec of code compiled from "<string>" with no Python frame running (--no-startup
// recorded linecache's import, and a command that did not compile wrote a trace, which a
// script that did not compile did not). A namedtuple's code, made by exec of a string
// while 3.13 imports traceback to show the SyntaxError, is "<string>" too, in a frame.
bool g_command_to_come = false;

// A script (cpython.run_file, before python opens it): the same, its code executed with
// no Python frame running. 3.13 shows a SyntaxError through the traceback module, whose
// imports exec code with __main__.__file__ set already: they started the program that had
// not compiled, and a trace was written over the user's file.
bool g_script_to_come = false;

PyObject* first_argument(PyObject* args) {
    return PyTuple_Check(args) && PyTuple_GET_SIZE(args) > 0 ? PyTuple_GET_ITEM(args, 0) : nullptr;
}

// The file of the code an exec event runs with no Python frame running (how python runs
// the program's own code), or "" (a frame runs, or not code).
std::string_view file_of_frameless_code(PyObject* args) {
    if (PyEval_GetFrame() != nullptr) return {};
    PyObject* code = first_argument(args);
    if (code == nullptr || !PyCode_Check(code)) return {};
    PyObject* file = reinterpret_cast<PyCodeObject*>(code)->co_filename;
    if (file == nullptr || !PyUnicode_Check(file)) return {};
    Py_ssize_t size = 0;
    const char* text = PyUnicode_AsUTF8AndSize(file, &size);  // kept by `file`
    if (text == nullptr) {
        PyErr_Clear();
        return {};
    }
    return {text, static_cast<std::size_t>(size)};
}

bool is_command_code(PyObject* args) { return file_of_frameless_code(args) == "<string>"; }

// A compiled script (`python app.pyc`), whose code python runs with no exec event: one of
// this python's (its magic number), which python runs as it is.
bool is_compiled_script(PyObject* args) {
    PyObject* path = first_argument(args);
    if (path == nullptr || !PyUnicode_Check(path)) return false;
    PyObject* encoded = PyUnicode_EncodeFSDefault(path);
    if (encoded == nullptr) {
        PyErr_Clear();
        return false;
    }
    const std::string_view name(PyBytes_AS_STRING(encoded),
                                static_cast<std::size_t>(PyBytes_GET_SIZE(encoded)));
    bool compiled = false;
    if (name.ends_with(".pyc")) {
        const int fd = ::open(PyBytes_AS_STRING(encoded), O_RDONLY | O_CLOEXEC);
        unsigned char head[4] = {};
        if (fd >= 0 && ::read(fd, head, sizeof head) == static_cast<ssize_t>(sizeof head)) {
            const long magic = PyImport_GetMagicNumber();
            compiled = head[0] == (magic & 0xFF) && head[1] == ((magic >> 8) & 0xFF) &&
                       head[2] == ((magic >> 16) & 0xFF) && head[3] == ((magic >> 24) & 0xFF);
        }
        if (fd >= 0) ::close(fd);
    }
    Py_DECREF(encoded);
    return compiled;
}

// -m: the module python was asked to run (cpython.run_module), until the program starts.
std::string g_module_to_come;

// Whether `code` is that of the package `-m` names (`-m pkg`, whose __init__ python runs
// before its __main__): its module is in sys.modules when python executes it, its
// __file__ the code's file. The packages above the module (`pkg` of `-m pkg.mod`) are
// python's search, as its error says when one fails ("Error while finding module
// specification").
bool is_code_of_module_to_come(PyObject* code) {
    if (g_module_to_come.empty() || code == nullptr || !PyCode_Check(code)) return false;
    PyObject* file = reinterpret_cast<PyCodeObject*>(code)->co_filename;
    if (file == nullptr || !PyUnicode_Check(file)) return false;
    PyObject* module =
        PyDict_GetItemString(PyImport_GetModuleDict(), g_module_to_come.c_str());  // borrowed
    if (module == nullptr || !PyModule_Check(module)) return false;
    PyObject* module_file = PyDict_GetItemString(PyModule_GetDict(module), "__file__");
    return module_file != nullptr && PyUnicode_Check(module_file) &&
           PyUnicode_Compare(module_file, file) == 0;
}

// -i's interactive session after a program python could not run (a -c that did not
// compile, a -m of no module): python executes each statement typed, with no Python
// frame running, as code from "<stdin>" ("<stdin>-N" on 3.13). The session is the program.
bool is_interactive_code(PyObject* args) {
    const std::string_view file = file_of_frameless_code(args);
    return file == "<stdin>" || file.starts_with("<stdin>-");
}

void note_target_start(const char* event, PyObject* args) {
    if (std::strcmp(event, "cpython.run_module") == 0) {
        PyObject* name = first_argument(args);
        const char* text =
            name != nullptr && PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : nullptr;
        if (text == nullptr) PyErr_Clear();
        g_module_to_come = text != nullptr ? text : "";
        return;
    }
    if (std::strcmp(event, "cpython.run_command") == 0) {
        g_command_to_come = true;
        return;
    }
    if (std::strcmp(event, "cpython.run_file") == 0) {
        if (is_compiled_script(args)) {
            target_starts();
        } else {
            g_script_to_come = true;
        }
        return;
    }
    if (std::strcmp(event, "cpython.run_stdin") == 0) {
        target_starts();
        return;
    }
    if (std::strcmp(event, "exec") != 0) return;
    if (is_interactive_code(args)) {
        g_command_to_come = false;
        g_script_to_come = false;
        target_starts();
        return;
    }
    if (!g_program_code_ran && is_code_of_module_to_come(first_argument(args))) {
        g_program_code_ran = true;
    }
    if (g_command_to_come) {
        if (is_command_code(args)) {
            g_command_to_come = false;
            target_starts();
        }
        return;
    }
    if (g_script_to_come) {
        if (PyEval_GetFrame() == nullptr) {
            g_script_to_come = false;
            target_starts();
        }
        return;
    }
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    PyObject* main_module = PyImport_AddModule("__main__");  // borrowed
    PyObject* globals = main_module != nullptr ? PyModule_GetDict(main_module) : nullptr;
    if (globals != nullptr) {
        PyObject* file = PyDict_GetItemString(globals, "__file__");
        PyObject* spec = PyDict_GetItemString(globals, "__spec__");
        if (file != nullptr || (spec != nullptr && spec != Py_None)) target_starts();
    }
    PyErr_Clear();
    PyErr_Restore(type, value, traceback);
}

// The interpreters besides the main one that this process has seen, by id (ids are never
// reused; 0, the main interpreter's, marks the free slots). Lock-free: interpreters with
// a GIL of their own run in parallel, and a fork may come at any moment.
constexpr std::size_t kKnownInterpreters = 256;
std::atomic<std::int64_t> g_known_interpreters[kKnownInterpreters] = {};
thread_local std::int64_t t_last_interpreter = 0;

// The session counts each interpreter other than the main one once, from its first audit
// event (it has some from its own start-up, its imports; 3.13 raises none for its
// creation). Past kKnownInterpreters, later ones go uncounted.
void note_interpreter() {
    PyThreadState* thread = hooks::current_thread_state();
    if (thread == nullptr) return;
    const std::int64_t id = PyInterpreterState_GetID(PyThreadState_GetInterpreter(thread));
    if (id <= 0 || id == t_last_interpreter) return;
    t_last_interpreter = id;
    for (auto& slot : g_known_interpreters) {
        std::int64_t seen = slot.load(std::memory_order_acquire);
        while (seen == 0) {
            if (slot.compare_exchange_weak(seen, id, std::memory_order_acq_rel)) {
                if (g_session != nullptr && ::getpid() == g_session->pid()) {
                    g_session->note_subinterpreter();
                }
                return;
            }
        }
        if (seen == id) return;
    }
}

// _thread.start_new_thread and (3.13) start_joinable_thread name the thread's function in
// their audit event: there it is vztrace's bootstrap, which calls the program's. The
// event's arguments are a tuple that CPython builds for the event and hands to the hooks
// of C (vztrace's is the first) before the program's: while it is theirs alone, the
// program's function goes back in the bootstrap's place, as python shows it.
void show_program_function(PyObject* args) {
    if (args == nullptr || !PyTuple_CheckExact(args) || Py_REFCNT(args) != 1 ||
        PyTuple_GET_SIZE(args) < 1) {
        return;
    }
    PyObject* first = PyTuple_GET_ITEM(args, 0);
    if (!PyCFunction_Check(first) ||
        reinterpret_cast<PyCFunctionObject*>(first)->m_ml != &g_bootstrap_def) {
        return;
    }
    PyTuple_SET_ITEM(args, 0, Py_NewRef(PyCFunction_GET_SELF(first)));
    Py_DECREF(first);  // start_thread_through's arguments hold it still
}

int audit_hook(const char* event, PyObject* args, void*) {
    // The hook is the runtime's: every interpreter's events come here. Another
    // interpreter's are its own (vztrace's hooks are the main interpreter's): it is
    // counted, for the trace to say that the calls run in it are not recorded.
    if (VZ_UNLIKELY(!hooks::in_main_interpreter())) {
        note_interpreter();
        return 0;
    }
    // os.execv and friends: this image's recording ends before the exec (a vztrace it
    // execs starts a recording of its own); through os.execv and os.execve's stand-ins,
    // in the C exec, after the program's own audit hooks.
    if (VZ_UNLIKELY(event[0] == 'o' && std::strcmp(event, "os.exec") == 0)) {
        if (g_active && g_exec_depth == 0) finish_now(Ending::kExec);
        return 0;
    }
    if (VZ_UNLIKELY(event[0] == 'c' && std::strcmp(event, "compile") == 0)) {
        symbols::note_compiled(args);
    }
    if (VZ_UNLIKELY(event[0] == '_' && std::strncmp(event, "_thread.start_", 14) == 0)) {
        show_program_function(args);
    }
    if (VZ_UNLIKELY(!g_target_started && g_program_started)) note_target_start(event, args);
    if (VZ_UNLIKELY(event[0] == 's' && std::strcmp(event, "sys.addaudithook") == 0)) {
        g_other_audit_hooks = true;
    }
    if (VZ_UNLIKELY(event[0] == 's' && std::strcmp(event, "sys.settrace") == 0) &&
        (frame_hook::live() || frame_hook::companion_live())) {
        frame_hook::give_way("the program set a trace function");
    }
    if (VZ_LIKELY(g_installed && g_threads_wrapped && g_exit_wrapped)) return 0;
    if (g_session == nullptr || ::getpid() != g_session->pid()) return 0;
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    if (!g_installed) install();
    if (g_installed && !g_threads_wrapped) wrap_thread_module();
    if (g_installed && !g_exit_wrapped) wrap_exit();
    PyErr_Restore(type, value, traceback);
    return 0;
}

void stop_recording() {
    if (g_stop_ticks == 0) g_stop_ticks = TickClock::now();
    if (!g_active && !g_hooks_idle) return;
    g_hooks_idle = false;  // the hooks go now
    g_active = false;
    frame_hook::uninstall();
    if (kUseMonitoring) monitoring::stop();
}

// Last of the program's atexit callbacks (registered first): names the threads still
// alive, then stops recording. Calls still open now are closed at this time.
PyObject* at_program_exit(PyObject*, PyObject*) {
    if (g_session == nullptr || ::getpid() != g_session->pid()) Py_RETURN_NONE;
    if (!g_program_started) Py_RETURN_NONE;  // ended before it (end_before_program)
    name_live_threads();
    refresh_process_name();
    stop_recording();
    const TreePlan& plan = g_session->plan();
    if (plan.role == ProcessRole::kRoot && !plan.parts_dir.empty()) {
        // The root writes at the very end: it closes its descriptors to let helper
        // processes (multiprocessing's resource tracker, forkserver) end, then waits for
        // their parts. Until then a terminating signal has the helper thread write it.
        // This thread's last records go to the writer thread first, with the GIL held: a
        // signal's writing waits for it until then, and touches no buffer of a thread
        // still handing one over.
        g_session->recording_stopped();
        signals::recording_stopped();
    } else {
        // Nothing more is recorded: the part (or own file) is written now, while nothing
        // can be interrupted, and a signal during finalization kills at once.
        write_once(Ending::kProgramEnded);
    }
    Py_RETURN_NONE;
}

PyMethodDef g_at_exit_def = {"vztrace_at_exit", at_program_exit, METH_NOARGS, nullptr};

// atexit calls the last registered first: registered with the hooks, before site runs,
// at_program_exit comes after every callback of the program's start-up too (a
// sitecustomize's, a .pth file's: registered at the program's start, it came before them,
// and their calls were not recorded).
bool g_at_exit_registered = false;
void register_at_exit() {
    if (g_at_exit_registered) return;
    use_builtin_module("atexit", [](PyObject* atexit) {
        PyObject* callback = PyCFunction_New(&g_at_exit_def, nullptr);
        PyObject* result =
            callback != nullptr ? PyObject_CallMethod(atexit, "register", "O", callback) : nullptr;
        g_at_exit_registered = result != nullptr;
        Py_XDECREF(result);
        Py_XDECREF(callback);
    });
}

// Py_AtExit: runs at the very end of Py_FinalizeEx, also after an uncaught exception or
// KeyboardInterrupt. The interpreter is gone; the writer needs none of it.
void write_at_exit() {
    if (g_session == nullptr || ::getpid() != g_session->pid()) return;
    if (g_stop_ticks == 0) g_stop_ticks = TickClock::now();
    g_active = false;
    write_once(Ending::kProgramEnded);
}

// At exit(): sys.exit(0) and `raise SystemExit` in a script or -c end the process from
// inside Py_RunMain (python calls exit() there, after finalizing), so its caller never sees
// the status. A lost trace changes 0 into 74 here too.
void exit_status_check(int status, void*) {
    if (status != 0 || trace_written() || g_session == nullptr || ::getpid() != g_session->pid()) {
        return;
    }
    std::fflush(nullptr);
    ::_exit(static_cast<int>(ExitCode::kTraceNotWritten));
}

// A forked child has a copy of the parent's buffers: it must not add to them or write
// them as its own trace.
void after_fork_in_child() { g_active = false; }

}  // namespace

// A child's session that could not start: held here, reachable for the process's life (the
// leak checker's view too), never used.
Session* g_untraced_session = nullptr;

std::string prepare_tracing(const TraceSettings& settings, const TreePlan& plan,
                            std::string process_name) {
    if (kUseMonitoring && settings.hook == HookChoice::kProfile) {
        return "--hook profile is 3.11's mechanism; on Python 3.12+ the profile hook runs on "
               "sys.monitoring: use --hook monitoring";
    }
    if (!kUseMonitoring && settings.hook == HookChoice::kMonitoring) {
        return "--hook monitoring needs Python 3.12+ (sys.monitoring); this vztrace embeds " +
               std::string(PY_VERSION) + ": use --hook profile";
    }
    if (settings.hook == HookChoice::kFrame &&
        (settings.log_func_args || settings.log_func_retval || settings.log_exception)) {
        return "--hook frame records no arguments, return values or exceptions: use --hook "
               "auto with --log-func-args, --log-func-retval and --log-exception";
    }
    RecordingInfo info;
    info.vztrace_version = VZTRACE_VERSION;
    info.python_version = PY_VERSION;
    g_session = new Session(settings, plan, info);  // lives until the process ends
    g_session->set_process_name(std::move(process_name));
    const signals::HeldAtStart held;  // until install_early knows the temporary file
    // A fifo at -o with no reader: SIGTERM or Ctrl-C ends the wait, before the program
    // (the default action) as after it (a signal vztrace defers while writing the trace, or
    // one the program handled).
    g_session->on_reader_wait([](const std::function<bool()>& try_open) {
        signals::run_unheld([&try_open] { wait_for_reader(try_open, signals::wait_stopped); });
    });
    if (std::string error = g_session->start(); !error.empty()) {
        if (plan.role != ProcessRole::kChild) return error;
        // A child whose tree has ended (its root gone, the parts directory with it: a
        // fire-and-forget child started as the root exits) runs its program untraced, as
        // a forked child does; it used to exit 2 with its program never run.
        if (!settings.quiet) {
            std::fprintf(stderr, "vztrace: warning: process %d is not traced: %s\n",
                         static_cast<int>(::getpid()), one_line(error).c_str());
        }
        g_untraced_session = g_session;  // kept, unused: nothing of it runs
        g_session = nullptr;
        return {};
    }
    // From the first moment the root can know of this process (its started marker), a
    // terminating signal leaves a word for it; one before the program starts removes the
    // file the trace was to be written into, beside -o.
    signals::EarlyEnd early_end;
    early_end.killed_marker = g_session->killed_marker();
    early_end.temporary = g_session->temporary_file();
    early_end.keep_for_program = plan.continued;
    if (plan.role == ProcessRole::kRoot && !plan.continued && !plan.parts_dir.empty()) {
        // Nothing of the tree exists yet but what this root made.
        early_end.registry_entry = registered_entry();
        early_end.counters = counters_path(plan.parts_dir);
        early_end.stream = g_session->stream_file();
        early_end.private_dir = plan.parts_dir;
    }
    signals::install_early(early_end);
    if (plan.role != ProcessRole::kChild) signals::trace_streamed_to(g_session->stream_file());
    g_session->announce();
    g_session->on_memory_refused(stop_for_memory);
    hooks::g_record_c_calls = !settings.ignore_c_function;
    PySys_AddAuditHook(audit_hook, nullptr);
    log_options::prepare(settings);
    Py_AtExit(write_at_exit);
    ::on_exit(exit_status_check, nullptr);
    pthread_atfork(nullptr, nullptr, after_fork_in_child);
    return {};
}

void program_starts() {
    if (g_session == nullptr || !g_installed) return;
    register_at_exit();
    install_process_handlers();
    if (!g_exit_wrapped) wrap_exit();
    g_program_started = true;
    log_options::program_starts();
    if (g_active) {
        g_session->current_buffer().append(TickClock::now(), g_startup_symbol, EventKind::kExit);
    }
}

bool trace_written() {
    // A child's failure is said on stderr and in the root's trace, not by its status: a
    // subprocess of the program exited 74 where python's exits 0.
    return !g_trace_failed || g_session == nullptr || !g_session->plan().started_by_user;
}

void end_before_program() {
    if (g_session == nullptr) return;
    g_active = false;
    g_session->abandon();
}

namespace {
// Whether a C exec or exit is to end the recording: only one of this very process that is
// still going (os._exit's stand-in has ended it already), not a vfork child of it (the
// parent's memory, another pid).
bool recording_in_this_process() {
    return g_active && g_session != nullptr && ::getpid() == g_session->pid();
}
}  // namespace

void before_c_exec() {
    if (recording_in_this_process() && PyGILState_Check() != 0) finish_now(Ending::kExec);
}

bool exec_ends_trace(const char* path, char* const envp[]) {
    if (!recording_in_this_process() || PyGILState_Check() == 0) return false;
    const ProcessRole role = g_session->plan().role;
    if (role != ProcessRole::kRoot && role != ProcessRole::kOwnFile) return false;
    struct stat self {};
    return ::stat("/proc/self/exe", &self) == 0 &&
           next_image(path, self, envp) == NextImage::kAnotherProgram;
}

void before_exec_of_another() { finish_now(Ending::kExecOfAnother); }

namespace {
// `envp` without the variables `leaves_out` names, then `added` (unless null): what an exec
// passes on, null-terminated.
template <typename LeavesOut>
std::vector<char*> environment_without(char* const envp[], LeavesOut leaves_out,
                                       char* added = nullptr) {
    std::vector<char*> environment;
    for (char* const* variable = envp; variable != nullptr && *variable != nullptr; ++variable) {
        if (!leaves_out(std::string_view(*variable))) environment.push_back(*variable);
    }
    if (added != nullptr) environment.push_back(added);
    environment.push_back(nullptr);
    return environment;
}
}  // namespace

std::vector<char*> environment_for_another(char* const envp[]) {
    return environment_without(envp, [](std::string_view variable) {
        return g_session != nullptr && places_in_tree(variable, g_session->plan());
    });
}

void after_failed_exec_of_another() {
    if (g_session != nullptr && ::getpid() == g_session->pid()) g_session->exec_of_another_failed();
}

bool hold_signals_for_exec(const struct stat& target) {
    if (!recording_in_this_process() || PyGILState_Check() == 0 ||
        g_session->plan().role == ProcessRole::kChild || g_session->plan().parts_dir.empty()) {
        return false;
    }
    struct stat self {};
    if (::stat("/proc/self/exe", &self) != 0 || self.st_dev != target.st_dev ||
        self.st_ino != target.st_ino) {
        return false;  // another program: it gets the signals as python leaves them
    }
    return signals::hold_across_exec();
}

bool part_left_for_next_image() {
    return g_session != nullptr && g_session->left_part_for_next_image();
}

void after_failed_exec() {
    // Under os.exec*, once the recording goes on (exec_through): a signal held meanwhile then
    // ends it as any would, where let go now it found the recording ended for the exec.
    if (g_exec_depth > 0) {
        g_let_go_after_resume = true;
        return;
    }
    signals::let_go_after_exec();
}

void let_signals_go() { signals::let_go_after_exec(); }

int before_c_exit(int status) {
    if (g_session == nullptr || ::getpid() != g_session->pid()) return status;
    // Another thread writes the trace (an exit that came first, the program's end, a
    // signal): it ends the process once done, as python's had ended already.
    if (g_writing_trace.load()) {
        while (true) ::pause();
    }
    if (g_active) {
        if (PyGILState_Check() == 0) {
            const int if_lost = status == 0 ? static_cast<int>(ExitCode::kTraceNotWritten) : status;
            if (!g_program_started || !signals::take_gil_or_exit(status, if_lost)) return status;
            // The program's end came first while this thread waited: it writes the trace.
            if (!g_active) return before_c_exit(status);
        }
        finish_now();
    } else if (g_program_started && !g_session->finished()) {
        // The recording has stopped and waits to be written: the program's exit work is
        // done (a __del__ during finalization), or memory ran out. It needs no interpreter.
        g_exit_from_c.store(true);  // children still running are waited for 1 s, not 10
        write_once(Ending::kEarly);
    } else {
        return status;
    }
    return status == 0 && !trace_written() ? static_cast<int>(ExitCode::kTraceNotWritten) : status;
}

}  // namespace vztrace::tracer

namespace {
using Exit = void (*)(int);
const Exit g_real_exit = reinterpret_cast<Exit>(::dlsym(RTLD_NEXT, "_exit"));
const Exit g_real_c_exit = reinterpret_cast<Exit>(::dlsym(RTLD_NEXT, "exit"));
}  // namespace

// exit from C while the program runs (a C library giving up, ctypes' libc.exit; python's
// own calls come once the recording has ended): the process ends without finalizing, as
// under python, and its recording ends first. Before libc's exit, not in one of its exit
// handlers: those run after the destructors of what was registered later (vztrace's own
// tables), while the program's other threads could still be recording.
extern "C" [[gnu::visibility("default")]] [[noreturn]] void exit(int status) noexcept {
    status = vztrace::tracer::before_c_exit(status);
    if (g_real_c_exit != nullptr) g_real_c_exit(status);
    std::_Exit(status);
}

// _exit from C: subprocess's child leaves by it when the program's preexec_fn raised, and
// faulthandler's watchdog (dump_traceback_later with exit=True) from a thread of its own;
// the records were lost (a child's root called it killed or crashed) and the temporary
// file left beside -o. Exported as execve is, below.
extern "C" [[gnu::visibility("default")]] [[noreturn]] void _exit(int status) {
    status = vztrace::tracer::before_c_exit(status);
    if (g_real_exit != nullptr) g_real_exit(status);
    ::syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

// execve, execv and fexecve from C: os.execv and os.execve call them, and subprocess's
// child with a preexec_fn (_posixsubprocess forks, runs the function, then execs with no
// audit event; it ended with its records in memory, and its root called it killed or
// crashed). vztrace's executable exports these (exported.list) so that libpython and the
// program's extensions find them before libc's; the records are written first.
namespace {
using Execve = int (*)(const char*, char* const[], char* const[]);
using Fexecve = int (*)(int, char* const[], char* const[]);
// Looked up before main: a forked child must not take the dynamic loader's lock.
const Execve g_real_execve = reinterpret_cast<Execve>(::dlsym(RTLD_NEXT, "execve"));
const Fexecve g_real_fexecve = reinterpret_cast<Fexecve>(::dlsym(RTLD_NEXT, "fexecve"));
}  // namespace

namespace {
// libc's exec of `target` (a path or a descriptor), once the recording has ended.
template <typename Exec, typename Target>
int exec_recorded(Exec real, Target target, char* const argv[], char* const envp[]) {
    // A root's exec of another program: its trace is written now, for no image of
    // vztrace's will go on with it.
    char descriptor_path[32];
    const char* path = descriptor_path;
    if constexpr (std::is_same_v<Target, int>) {
        std::snprintf(descriptor_path, sizeof descriptor_path, "/proc/self/fd/%d", target);
    } else {
        path = target;
    }
    if (vztrace::tracer::exec_ends_trace(path, envp)) {
        vztrace::tracer::before_exec_of_another();
        if (real == nullptr) {
            errno = ENOSYS;
            return -1;
        }
        std::vector<char*> environment = vztrace::tracer::environment_for_another(envp);
        const int result = real(target, argv, environment.data());
        const int saved_errno = errno;
        vztrace::tracer::after_failed_exec_of_another();
        errno = saved_errno;
        return result;
    }
    // Held from before the recording ends (a signal while its part is written would end
    // the process after it, the next image never run).
    struct stat identity {};
    bool held = false;
    if constexpr (std::is_same_v<Target, int>) {
        held = ::fstat(target, &identity) == 0 && vztrace::tracer::hold_signals_for_exec(identity);
    } else {
        held = ::stat(target, &identity) == 0 && vztrace::tracer::hold_signals_for_exec(identity);
    }
    vztrace::tracer::before_c_exec();
    if (held && !vztrace::tracer::part_left_for_next_image()) {
        vztrace::tracer::let_signals_go();  // nothing waits for the next image
        held = false;
    }
    if (real == nullptr) {
        if (held) vztrace::tracer::after_failed_exec();
        errno = ENOSYS;
        return -1;
    }
    // The next image learns that its signals were held by this one (and lets them go).
    std::vector<char*> environment;
    std::string word;
    if (held) {
        word = vztrace::tracer::signals::held_word();
        const std::string_view name = vztrace::tracer::signals::kHeldWord;
        environment = vztrace::tracer::environment_without(
            envp,
            [name](std::string_view text) {
                return text.starts_with(name) && text.size() > name.size() &&
                       text[name.size()] == '=';
            },
            word.data());
    }
    const int result = real(target, argv, held ? environment.data() : envp);
    if (held) {
        const int saved_errno = errno;
        vztrace::tracer::after_failed_exec();
        errno = saved_errno;
    }
    return result;
}
}  // namespace

extern "C" [[gnu::visibility("default")]] int execve(const char* path, char* const argv[],
                                                     char* const envp[]) {
    return exec_recorded(g_real_execve, path, argv, envp);
}

extern "C" [[gnu::visibility("default")]] int execv(const char* path, char* const argv[]) {
    return execve(path, argv, environ);
}

// os.execve(fd, ...): libc's fexecve does not go through execve.
extern "C" [[gnu::visibility("default")]] int fexecve(int fd, char* const argv[],
                                                      char* const envp[]) {
    return exec_recorded(g_real_fexecve, fd, argv, envp);
}
