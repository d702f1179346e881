// Symbol ids for code objects and C callables, interned once at first sight. A code
// object keeps its id in a co_extra slot, so the hot path is one PyCode_GetExtra call;
// C callables are keyed by their PyMethodDef and owner in a small open-addressing table.
#pragma once

#include <Python.h>

#include <cstdint>
#include <string>

#include "tracer/compiler.hpp"
#include "tracer/symbol_table.hpp"

namespace vztrace::tracer::symbols {

// Requests the co_extra slot; needs a live interpreter. Returns false if none is left.
bool init();

inline Py_ssize_t g_code_extra_index = -1;

// CPython's _PyCodeObjectExtra (internal/pycore_code.h; the same in 3.11 to 3.13). Read
// directly, it saves the library call of PyCode_GetExtra (two per Python call); the
// layout is checked against the API at the first code object before it is trusted.
struct CodeExtra {
    Py_ssize_t size;
    void* extras[1];
};
inline bool g_direct_extra = false;

[[gnu::noinline]] SymbolId intern_code(PyObject* code);

VZ_ALWAYS_INLINE SymbolId of_code(PyObject* code) {
    void* extra = nullptr;
    if (VZ_LIKELY(g_direct_extra)) {
        const auto* table =
            static_cast<const CodeExtra*>(reinterpret_cast<PyCodeObject*>(code)->co_extra);
        if (table != nullptr && g_code_extra_index < table->size) {
            extra = table->extras[g_code_extra_index];
        }
    } else {
#if PY_VERSION_HEX >= 0x030C0000
        PyUnstable_Code_GetExtra(code, g_code_extra_index, &extra);
#else
        _PyCode_GetExtra(code, g_code_extra_index, &extra);
#endif
    }
    if (VZ_LIKELY(extra != nullptr)) {
        return static_cast<SymbolId>(reinterpret_cast<std::uintptr_t>(extra) - 1);
    }
    return intern_code(code);
}

// Built-in functions and method descriptors: what cProfile counts as C calls. Exact types
// first: a Python function (most calls, on 3.12+ a CALL event each) is turned away without
// PyCFunction_Check's walk of its type's bases.
VZ_ALWAYS_INLINE bool is_c_callable(PyObject* callable) {
    PyTypeObject* type = Py_TYPE(callable);
    if (type == &PyCFunction_Type || type == &PyMethodDescr_Type) return true;
    if (type == &PyFunction_Type) return false;
    return PyCFunction_Check(callable);
}

// The UTF-8 of a str, whatever it holds: a lone surrogate (a name made from undecodable
// bytes) becomes '?', a NUL stays; "?" for what is not a str.
std::string utf8_of(PyObject* text);

// The audit event "compile" (source, filename): a relative file name is taken from the
// working directory now, when a function of the code first runs.
void note_compiled(PyObject* args);

// Id of a C callable (is_c_callable must hold).
SymbolId of_c_callable(PyObject* callable);

}  // namespace vztrace::tracer::symbols
