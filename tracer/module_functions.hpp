// Functions of CPython's modules that vztrace stands in for (thread start, sys.monitoring's
// event queries, profiler registration, signal.signal): a C function of vztrace's takes the
// module attribute's place and calls the original. Includes Python.h; tracer/ only.
#pragma once

#include <Python.h>

namespace vztrace::tracer {

// Puts a function made from `def` (named `def.ml_name`, its __module__ `module_name`) in
// place of `module.<def.ml_name>`. Returns it (a new reference) and sets `original` to the
// function it replaces (a new reference, kept for the life of the process); returns null,
// with nothing changed and no error set, when the module has no such attribute or the
// replacement cannot be made.
PyObject* replace_module_function(PyObject* module, const char* module_name, PyMethodDef& def,
                                  PyObject*& original);

}  // namespace vztrace::tracer
