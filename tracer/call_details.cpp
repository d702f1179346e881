#include <Python.h>

#include "tracer/call_details.hpp"

#include <frameobject.h>

#include <algorithm>
#include <csignal>
#include <utility>
#include <vector>

#include "tracer/hook_state.hpp"

namespace vztrace::tracer::details {
namespace {

std::string type_name(PyObject* type) {
    std::string name = "?";
    if (type == nullptr || !PyType_Check(type)) return name;
    PyObject* text = PyType_GetName(reinterpret_cast<PyTypeObject*>(type));
    const char* utf8 = text != nullptr ? PyUnicode_AsUTF8(text) : nullptr;
    if (utf8 != nullptr) name = utf8;
    Py_XDECREF(text);
    PyErr_Clear();
    return name;
}

// The text of a str, as UTF-8 (lone surrogates escaped); false with an error set if none.
bool utf8_of(PyObject* text, std::string& out) {
    Py_ssize_t size = 0;
    if (const char* utf8 = PyUnicode_AsUTF8AndSize(text, &size); utf8 != nullptr) {
        out.assign(utf8, static_cast<std::size_t>(size));
        return true;
    }
    PyErr_Clear();
    PyObject* bytes = PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace");
    if (bytes == nullptr) return false;
    out.assign(PyBytes_AS_STRING(bytes), static_cast<std::size_t>(PyBytes_GET_SIZE(bytes)));
    Py_DECREF(bytes);
    return true;
}

// functools.partial's type, if the program has imported functools (borrowed), else null.
PyTypeObject* partial_type() {
    PyObject* name = PyUnicode_FromString("functools");
    PyObject* functools = name != nullptr ? PyImport_GetModule(name) : nullptr;
    Py_XDECREF(name);
    PyObject* partial = functools != nullptr && PyModule_Check(functools)
                            ? PyDict_GetItemString(PyModule_GetDict(functools), "partial")
                            : nullptr;
    Py_XDECREF(functools);
    PyErr_Clear();
    return partial != nullptr && PyType_Check(partial) ? reinterpret_cast<PyTypeObject*>(partial)
                                                       : nullptr;
}

// The code a signal handler runs: a function's, a method's, a partial's function's, or
// the __call__ of a callable object's type. Null when there is none. Runs none of the
// program's code (a property named func, a __getattr__: python never calls them here).
PyObject* handler_code(PyObject* handler) {  // borrowed in, new reference out
    PyTypeObject* partial = partial_type();
    PyObject* call_name = PyUnicode_InternFromString("__call__");
    PyObject* callable = Py_NewRef(handler);
    for (int depth = 0; depth < 8 && callable != nullptr && call_name != nullptr; ++depth) {
        if (PyFunction_Check(callable)) {
            PyObject* code = Py_NewRef(PyFunction_GET_CODE(callable));
            Py_DECREF(callable);
            Py_DECREF(call_name);
            return code;
        }
        PyObject* inner = nullptr;
        if (PyMethod_Check(callable)) {
            inner = Py_NewRef(PyMethod_GET_FUNCTION(callable));
        } else if (partial != nullptr && Py_IS_TYPE(callable, partial)) {
            inner = PyObject_GetAttrString(callable, "func");  // a member of the C type's
        } else if (!PyType_Check(callable)) {
            inner = Py_XNewRef(_PyType_Lookup(Py_TYPE(callable), call_name));  // borrowed
        }
        PyErr_Clear();
        Py_DECREF(callable);
        callable = inner;
    }
    Py_XDECREF(callable);
    Py_XDECREF(call_name);
    return nullptr;
}

// Whether one of the traceback's frames runs the program's signal handler: CPython runs
// the handlers of signals that have arrived wherever it checks for them, and a repr does
// (an int's checks at each step of its conversion, a Python __repr__ at its start).
bool raised_by_signal_handler(PyObject* traceback) {
    if (traceback == nullptr || !PyTraceBack_Check(traceback)) return false;
    PyObject* name = PyUnicode_FromString("_signal");
    PyObject* signal_module = name != nullptr ? PyImport_GetModule(name) : nullptr;
    Py_XDECREF(name);
    PyErr_Clear();
    if (signal_module == nullptr) return false;  // no handler of the program's, then
    std::vector<PyObject*> codes;
    for (int number = 1; number < NSIG; ++number) {
        PyObject* handler = PyObject_CallMethod(signal_module, "getsignal", "i", number);
        if (handler == nullptr) {
            PyErr_Clear();
            continue;
        }
        if (PyCallable_Check(handler) != 0) {
            if (PyObject* code = handler_code(handler); code != nullptr) codes.push_back(code);
        }
        Py_DECREF(handler);
    }
    Py_DECREF(signal_module);
    bool found = false;
    for (auto* entry = reinterpret_cast<PyTracebackObject*>(traceback); entry != nullptr && !found;
         entry = entry->tb_next) {
        PyCodeObject* code = PyFrame_GetCode(entry->tb_frame);  // strong reference
        found =
            std::find(codes.begin(), codes.end(), reinterpret_cast<PyObject*>(code)) != codes.end();
        Py_DECREF(code);
    }
    for (PyObject* code : codes) Py_DECREF(code);
    return found;
}

// The program's exception that a repr was interrupted by, raised in the program at its next
// check (the main thread's, as for a signal). Only the first waits; the GIL guards it.
struct PassedOn {
    PyObject* type = nullptr;
    PyObject* value = nullptr;
    PyObject* traceback = nullptr;
};
PassedOn g_passed_on;

int raise_passed_on(void*) {
    if (g_passed_on.type == nullptr) return 0;
    const PassedOn passed = std::exchange(g_passed_on, {});
    PyErr_Restore(passed.type, passed.value, passed.traceback);
    return -1;
}

// Takes the error a repr raised (fetched): the program's (a KeyboardInterrupt, or what its
// signal handler raised) is passed on to the program, anything else is the repr's and is
// dropped.
void pass_on_if_programs(PyObject* type, PyObject* value, PyObject* traceback) {
    PyErr_NormalizeException(&type, &value, &traceback);
    const bool programs = PyErr_GivenExceptionMatches(type, PyExc_KeyboardInterrupt) != 0 ||
                          raised_by_signal_handler(traceback);
    if (programs && g_passed_on.type == nullptr) {
        g_passed_on = {type, value, traceback};
        if (Py_AddPendingCall(raise_passed_on, nullptr) == 0) return;
        g_passed_on = {};
        if (PyErr_GivenExceptionMatches(type, PyExc_KeyboardInterrupt) != 0) PyErr_SetInterrupt();
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
}

// take(object) as text, with the pending exception set aside and the calls it makes left
// out of the recording. An exception it raises is cleared and named in the text, unless it
// is the program's: a KeyboardInterrupt, or what a signal handler of the program's that
// ran inside the repr raised. That is raised in the program at its next check, which at a
// call's start is where python's would be raised (its first instruction).
std::string text_of(PyObject* object, PyObject* (*take)(PyObject*), const char* what) {
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    const bool was_busy = t_busy;
    t_busy = true;
    PyObject* text = take(object);
    t_busy = was_busy;
    std::string result;
    if (text == nullptr || !utf8_of(text, result)) {
        PyObject *error = nullptr, *error_value = nullptr, *error_traceback = nullptr;
        PyErr_Fetch(&error, &error_value, &error_traceback);
        result = std::string("<") + what + " failed: " + type_name(error) + ">";
        pass_on_if_programs(error, error_value, error_traceback);
    }
    Py_XDECREF(text);
    PyErr_Restore(type, value, traceback);
    return cut(std::move(result));
}

}  // namespace

bool wanted(const TraceSettings& settings) {
    return settings.log_func_args || settings.log_func_retval || settings.log_exception ||
           settings.log_audit;
}

void configure(const TraceSettings& settings) {
    g_wanted.args = settings.log_func_args;
    g_wanted.retval = settings.log_func_retval;
    g_wanted.exception = settings.log_exception;
}

std::string cut(std::string text) {
    if (text.size() <= kMaxReprBytes) return text;
    std::size_t keep = kMaxReprBytes - 3;
    while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0U) == 0x80U) --keep;
    text.resize(keep);
    text += "...";
    return text;
}

std::string repr_of(PyObject* object) {
    // An int's own repr looks for signals that have arrived and runs their handlers (inside
    // vztrace's callback, unrecorded, where python would run them at the call's first
    // instruction): one that fits 64 bits is written here.
    if (PyLong_CheckExact(object)) {
        int overflow = 0;
        const long long value = PyLong_AsLongLongAndOverflow(object, &overflow);
        if (overflow == 0) return std::to_string(value);  // (an exact int cannot fail)
    }
    return text_of(object, PyObject_Repr, "repr");
}
std::string str_of(PyObject* object) { return text_of(object, PyObject_Str, "str"); }

std::string describe_exception(PyObject* exception) {
    std::string name = type_name(reinterpret_cast<PyObject*>(Py_TYPE(exception)));
    const std::string message = str_of(exception);
    if (!message.empty()) name += ": " + message;
    return cut(std::move(name));
}

std::vector<events::Arg> call_args(PyFrameObject* frame, PyObject* code) {
    std::vector<events::Arg> args;
    PyCodeObject* frame_code = PyFrame_GetCode(frame);  // strong reference
    Py_DECREF(frame_code);
    if (reinterpret_cast<PyObject*>(frame_code) != code) return args;
    const auto* co = reinterpret_cast<const PyCodeObject*>(code);
    const int count = co->co_argcount + co->co_kwonlyargcount +
                      ((co->co_flags & CO_VARARGS) != 0 ? 1 : 0) +
                      ((co->co_flags & CO_VARKEYWORDS) != 0 ? 1 : 0);
    if (count == 0) return args;
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    PyObject* names = PyCode_GetVarnames(frame_code);
#if PY_VERSION_HEX < 0x030C0000
    // 3.11 has no PyFrame_GetVar: the frame's locals dict (as a profile function sees it).
    PyObject* locals = PyFrame_GetLocals(frame);
#endif
    for (int i = 0; names != nullptr && i < count && i < PyTuple_GET_SIZE(names); ++i) {
        PyObject* name = PyTuple_GET_ITEM(names, i);
        std::string name_text;
        if (!utf8_of(name, name_text)) break;
#if PY_VERSION_HEX >= 0x030C0000
        PyObject* arg = PyFrame_GetVar(frame, name);
#else
        PyObject* arg =
            locals != nullptr ? Py_XNewRef(PyDict_GetItemWithError(locals, name)) : nullptr;
#endif
        if (arg == nullptr) {
            PyErr_Clear();
            continue;
        }
        args.emplace_back(std::move(name_text), repr_of(arg));
        Py_DECREF(arg);
    }
#if PY_VERSION_HEX < 0x030C0000
    Py_XDECREF(locals);
#endif
    Py_XDECREF(names);
    PyErr_Clear();
    PyErr_Restore(type, value, traceback);
    return args;
}

void record_enter(SymbolId id, PyObject* code, PyFrameObject* frame) {
    std::vector<events::Arg> args;
    // A call begun while paused is left out: its arguments are not shown.
    if (g_wanted.args && frame != nullptr && hooks::g_session->keeps_what_begins_now()) {
        args = call_args(frame, code);
        if (VZ_UNLIKELY(!hooks::g_active)) return;  // a repr ended the recording
    }
    const std::uint64_t now = TickClock::now();
    events::args_for_next(*hooks::g_session, args, now);
    hooks::g_session->current_buffer().append(now, id, EventKind::kEnter);
}

namespace {

// The exit, with `args` (taken after `now`) when the recording has not ended meanwhile.
void record_exit(SymbolId id, std::uint64_t now, EventKind kind,
                 const std::vector<events::Arg>& args) {
    if (!args.empty() && VZ_UNLIKELY(!hooks::g_active)) return;  // a repr ended the recording
    events::args_for_next(*hooks::g_session, args, now);
    hooks::g_session->current_buffer().append(now, id, kind);
}

}  // namespace

void record_return(SymbolId id, std::uint64_t now, PyObject* value) {
    // One that ends while paused may have begun before it, and is then kept with its end.
    std::vector<events::Arg> args;
    if (g_wanted.retval && value != nullptr && !hooks::g_session->size_cap_reached()) {
        args.emplace_back("return_value", repr_of(value));
    }
    record_exit(id, now, EventKind::kExit, args);
}

void record_unwind(SymbolId id, std::uint64_t now, PyObject* exception) {
    std::vector<events::Arg> args;
    if (g_wanted.exception && exception != nullptr && !hooks::g_session->size_cap_reached()) {
        args.emplace_back("exception", describe_exception(exception));
    }
    record_exit(id, now, EventKind::kExitByException, args);
}

namespace {

// The exit by an exception last recorded without it on this thread (remember_exit).
struct ExitWithoutException {
    ThreadBuffer* buffer = nullptr;
    format::Record record{};
    PyObject* site = nullptr;  // compared only, never dereferenced
};
thread_local ExitWithoutException t_exit_without_exception;

// Appends an exit by an exception, without the exception: the record, to take back later.
format::Record append_exit_without_exception(ThreadBuffer& buffer, std::uint64_t ticks,
                                             SymbolId id) {
    const format::Record record{ticks, id, EventKind::kExitByException};
    buffer.append(record.ticks, record.symbol, record.kind);
    return record;
}

}  // namespace

void remember_exit(std::uint64_t ticks, SymbolId id, PyObject* site) {
    ThreadBuffer& buffer = hooks::g_session->current_buffer();
    const format::Record record = append_exit_without_exception(buffer, ticks, id);
    if (g_wanted.exception) t_exit_without_exception = {&buffer, record, site};
}

namespace {

// 3.11: the C exit remember_c_exit keeps (t_c_exit_remembered says whether there is one).
struct CExitWithoutException {
    ThreadBuffer* buffer = nullptr;
    format::Record record{};
    PyObject* frame = nullptr;  // compared only
    int lasti = -1;             // the call's instruction, in bytes (as tb_lasti)
};
thread_local CExitWithoutException t_c_exit;

CExitWithoutException take_c_exit() {
    t_c_exit_remembered = false;
    return std::exchange(t_c_exit, {});
}

// Whether `exception` was raised by the remembered C call: its traceback's newest entry is
// the call's frame, at the call.
bool raised_by(const CExitWithoutException& exit, PyObject* exception,
               PyObject* given_traceback = nullptr) {
    if (exit.frame == nullptr || exception == nullptr || !PyExceptionInstance_Check(exception)) {
        return false;
    }
    // 3.11 keeps a propagating exception's traceback beside it, not in it, until caught.
    PyObject* traceback = given_traceback != nullptr ? Py_NewRef(given_traceback)
                                                     : PyException_GetTraceback(exception);
    const auto* entry = reinterpret_cast<PyTracebackObject*>(traceback);
    const bool raised = traceback != nullptr && PyTraceBack_Check(traceback) &&
                        reinterpret_cast<PyObject*>(entry->tb_frame) == exit.frame &&
                        entry->tb_lasti == exit.lasti;
    Py_XDECREF(traceback);
    return raised;
}

std::vector<events::Arg> exception_args(PyObject* exception) {
    std::vector<events::Arg> args;
    args.emplace_back("exception", describe_exception(exception));
    return args;
}

}  // namespace

void add_exception(PyObject* site, PyObject* exception, PyObject* traceback) {
    const ExitWithoutException exit = std::exchange(t_exit_without_exception, {});
    const CExitWithoutException c_exit = take_c_exit();
    if (exit.buffer == nullptr || exit.site != site || exception == nullptr) return;
    if (VZ_UNLIKELY(!hooks::g_active) || hooks::g_session->size_cap_reached()) return;
    ThreadBuffer& buffer = hooks::g_session->current_buffer();
    if (&buffer != exit.buffer || !buffer.take_back_last(exit.record)) return;
    const std::vector<events::Arg> args = exception_args(exception);
    // 3.11: a C call of the frame's that raised just before the frame ended.
    if (c_exit.buffer == &buffer && buffer.take_back_last(c_exit.record)) {
        const bool raised = raised_by(c_exit, exception, traceback);
        record_exit(c_exit.record.symbol, c_exit.record.ticks, EventKind::kExitByException,
                    raised ? args : std::vector<events::Arg>{});
    }
    record_exit(exit.record.symbol, exit.record.ticks, EventKind::kExitByException, args);
}

void remember_c_exit(std::uint64_t ticks, SymbolId id, PyFrameObject* frame) {
    ThreadBuffer& buffer = hooks::g_session->current_buffer();
    const format::Record record = append_exit_without_exception(buffer, ticks, id);
    t_c_exit = {&buffer, record, reinterpret_cast<PyObject*>(frame), PyFrame_GetLasti(frame)};
    t_c_exit_remembered = true;
}

void next_event_in_handler(PyFrameObject* frame, int what, PyObject* arg) {
    // The frame left by an exception: add_exception looks at it.
    if (what == PyTrace_RETURN && arg == nullptr &&
        reinterpret_cast<PyObject*>(frame) == t_c_exit.frame) {
        return;
    }
    const CExitWithoutException exit = take_c_exit();
    if (what != PyTrace_CALL && what != PyTrace_C_CALL) return;
    // The frame's first call since: made in the handler if the exception is being handled.
    PyFrameObject* back = what == PyTrace_CALL ? PyFrame_GetBack(frame) : nullptr;
    const bool same_frame =
        reinterpret_cast<PyObject*>(back != nullptr ? back : frame) == exit.frame;
    Py_XDECREF(back);
    if (!same_frame || VZ_UNLIKELY(!hooks::g_active)) return;
    PyObject* handled = PyErr_GetHandledException();  // strong reference
    ThreadBuffer& buffer = hooks::g_session->current_buffer();
    if (raised_by(exit, handled) && &buffer == exit.buffer && buffer.take_back_last(exit.record)) {
        record_exit(exit.record.symbol, exit.record.ticks, EventKind::kExitByException,
                    exception_args(handled));
    }
    Py_XDECREF(handled);
}

}  // namespace vztrace::tracer::details
