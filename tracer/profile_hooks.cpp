#include "tracer/profile_hooks.hpp"

#include <frameobject.h>

#include "tracer/hook_state.hpp"
#include "tracer/python_symbols.hpp"

namespace vztrace::tracer::profile {
namespace {

using hooks::g_active;
using hooks::g_session;

VZ_ALWAYS_INLINE SymbolId symbol_of_frame(PyFrameObject* frame) {
    PyCodeObject* code = PyFrame_GetCode(frame);  // strong reference
    const SymbolId id = symbols::of_code(reinterpret_cast<PyObject*>(code));
    Py_DECREF(code);
    return id;
}

int on_event(PyObject*, PyFrameObject* frame, int what, PyObject* arg) {
    if (VZ_UNLIKELY(!g_active)) return 0;
    switch (what) {
        case PyTrace_CALL: {
            const SymbolId id = symbol_of_frame(frame);
            if (id != kHiddenSymbol) {
                g_session->current_buffer().append(TickClock::now(), id, EventKind::kEnter);
            }
            break;
        }
        case PyTrace_RETURN: {
            const std::uint64_t now = TickClock::now();
            const SymbolId id = symbol_of_frame(frame);
            if (id != kHiddenSymbol) {
                // arg is NULL when the frame is left by an exception.
                g_session->current_buffer().append(
                    now, id, arg == nullptr ? EventKind::kExitByException : EventKind::kExit);
            }
            break;
        }
        case PyTrace_C_CALL: {
            if (!hooks::g_record_c_calls || !symbols::is_c_callable(arg)) break;
            if (symbol_of_frame(frame) == kHiddenSymbol) break;
            const SymbolId id = symbols::of_c_callable(arg);
            g_session->current_buffer().append(TickClock::now(), id, EventKind::kEnter);
            break;
        }
        case PyTrace_C_RETURN:
        case PyTrace_C_EXCEPTION: {
            const std::uint64_t now = TickClock::now();
            if (!hooks::g_record_c_calls || !symbols::is_c_callable(arg)) break;
            if (symbol_of_frame(frame) == kHiddenSymbol) break;
            const SymbolId id = symbols::of_c_callable(arg);
            g_session->current_buffer().append(
                now, id, what == PyTrace_C_RETURN ? EventKind::kExit : EventKind::kExitByException);
            break;
        }
        default:
            break;
    }
    return 0;
}

}  // namespace

void attach_current_thread() { PyEval_SetProfile(on_event, nullptr); }

void detach_current_thread() { PyEval_SetProfile(nullptr, nullptr); }

}  // namespace vztrace::tracer::profile
