// Functions of CPython's modules that vztrace stands in for (thread start, sys.monitoring's
// event queries, profiler registration, signal.signal): a C function of vztrace's takes the
// module attribute's place and calls the original. Includes Python.h; tracer/ only.
#pragma once

#include <Python.h>

#include <functional>

namespace vztrace::tracer {

// Puts a function made from `def` (named `def.ml_name`) in place of
// `module.<def.ml_name>`, with the original's __self__, __module__ and doc (so signature)
// where it is a built-in function, else the module and `module_name`. Returns it (a new reference)
// and sets `original` to the function it replaces (a new reference, kept for the life of the
// process); returns null, with nothing changed and no error set, when the module has no such
// attribute or the replacement cannot be made.
PyObject* replace_module_function(PyObject* module, const char* module_name, PyMethodDef& def,
                                  PyObject*& original);

// Hands built-in module `name` (one whose state is the interpreter's: atexit's callbacks,
// gc's) to `use`, for vztrace's own use; when the program had not imported it, it is taken
// out of sys.modules again, so the program sees python's modules (an import of its own
// later makes a module object over the same state). Any error is cleared.
void use_builtin_module(const char* name, const std::function<void(PyObject*)>& use);

}  // namespace vztrace::tracer
