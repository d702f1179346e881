#include "tracer/module_functions.hpp"

#include <cstring>

namespace vztrace::tracer {

PyObject* replace_module_function(PyObject* module, const char* module_name, PyMethodDef& def,
                                  PyObject*& original) {
    PyObject* current = PyObject_GetAttrString(module, def.ml_name);
    // What the program can see of it is the original's: its __self__ (the module), its
    // __module__, its doc and signature (inspect.signature reads them from the doc).
    PyObject* self = module;
    PyObject* name = nullptr;
    if (current != nullptr && PyCFunction_Check(current)) {
        const auto* function = reinterpret_cast<PyCFunctionObject*>(current);
        self = function->m_self;
        name = Py_XNewRef(function->m_module);
        def.ml_doc = function->m_ml->ml_doc;
    }
    if (current != nullptr && name == nullptr) name = PyUnicode_FromString(module_name);
    PyObject* replacement = name != nullptr ? PyCFunction_NewEx(&def, self, name) : nullptr;
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

namespace {
// Built-in module `name` made from its entry in the interpreter's table of built-ins rather
// than imported: the import system would print a line of its own under `-X importtime`
// that python does not, and put it in sys.modules. A new reference, or null.
PyObject* made_builtin(const char* name, PyObject* key) {
    for (const _inittab* entry = PyImport_Inittab; entry->name != nullptr; ++entry) {
        if (std::strcmp(entry->name, name) != 0 || entry->initfunc == nullptr) continue;
        PyObject* made = entry->initfunc();
        if (made == nullptr || !PyObject_TypeCheck(made, &PyModuleDef_Type)) return made;
        auto* def = reinterpret_cast<PyModuleDef*>(made);  // multi-phase: the spec's name
        // A types.SimpleNamespace (sys.implementation's type): a module there printed a
        // line of its own as it was destroyed, under -v.
        PyObject* implementation = PySys_GetObject("implementation");  // borrowed
        PyObject* fields = Py_BuildValue("{sO}", "name", key);
        PyObject* no_args = PyTuple_New(0);
        PyObject* spec = implementation != nullptr && fields != nullptr && no_args != nullptr
                             ? PyObject_Call(reinterpret_cast<PyObject*>(Py_TYPE(implementation)),
                                             no_args, fields)
                             : nullptr;
        Py_XDECREF(no_args);
        Py_XDECREF(fields);
        PyObject* module = spec != nullptr ? PyModule_FromDefAndSpec(def, spec) : nullptr;
        if (module != nullptr && PyModule_ExecDef(module, def) != 0) Py_CLEAR(module);
        Py_XDECREF(spec);
        return module;
    }
    return nullptr;
}
}  // namespace

void use_builtin_module(const char* name, const std::function<void(PyObject*)>& use) {
    PyObject* key = PyUnicode_FromString(name);
    PyObject* already = key != nullptr ? PyImport_GetModule(key) : nullptr;  // new reference
    PyErr_Clear();
    PyObject* module = already != nullptr || key == nullptr ? already : made_builtin(name, key);
    if (module != nullptr) use(module);
    PyErr_Clear();
    if (module != nullptr && already == nullptr) {
        PyObject* modules = PyImport_GetModuleDict();  // borrowed
        if (PyDict_GetItemWithError(modules, key) == module) PyDict_DelItem(modules, key);
        PyErr_Clear();
        // Kept: a module its functions refer back to would be garbage, which the program's
        // first gc.collect() would find and count (3.13's atexit: 9 objects python has not).
        module = nullptr;
    }
    Py_XDECREF(module);
    Py_XDECREF(key);
}

}  // namespace vztrace::tracer
