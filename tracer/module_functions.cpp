#include "tracer/module_functions.hpp"

namespace vztrace::tracer {

PyObject* replace_module_function(PyObject* module, const char* module_name, PyMethodDef& def,
                                  PyObject*& original) {
    PyObject* current = PyObject_GetAttrString(module, def.ml_name);
    PyObject* name = current != nullptr ? PyUnicode_FromString(module_name) : nullptr;
    PyObject* replacement = name != nullptr ? PyCFunction_NewEx(&def, nullptr, name) : nullptr;
    Py_XDECREF(name);
    if (replacement == nullptr || PyObject_SetAttrString(module, def.ml_name, replacement) != 0) {
        Py_XDECREF(current);
        Py_CLEAR(replacement);
        PyErr_Clear();
        return nullptr;
    }
    original = current;
    return replacement;
}

}  // namespace vztrace::tracer
