/* The floor: the cheapest hooks CPython allows, doing nothing. bench/run times fib with
 * them installed to show what any tracer built on the same mechanism must pay.
 * 3.12+: empty METH_FASTCALL sys.monitoring callbacks for PY_START and PY_RETURN.
 * 3.11: an empty PyEval_SetProfile function. */
#include <Python.h>

static PyObject *empty_callback(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    (void)args;
    (void)nargs;
    Py_RETURN_NONE;
}

static int empty_profile(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) {
    (void)obj;
    (void)frame;
    (void)what;
    (void)arg;
    return 0;
}

static PyMethodDef callback_def = {"empty", (PyCFunction)(void (*)(void))empty_callback,
                                   METH_FASTCALL, NULL};

#define FLOOR_TOOL 3

static PyObject *install(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *mon = PySys_GetObject("monitoring");
    PyObject *callback = PyCFunction_New(&callback_def, NULL);
    if (mon == NULL || callback == NULL) return NULL;
    PyObject *r = PyObject_CallMethod(mon, "use_tool_id", "is", FLOOR_TOOL, "vzfloor");
    if (r == NULL) return NULL;
    Py_DECREF(r);
    long events[2] = {1 /* PY_START */, 4 /* PY_RETURN */};
    for (int i = 0; i < 2; i++) {
        r = PyObject_CallMethod(mon, "register_callback", "ilO", FLOOR_TOOL, events[i], callback);
        if (r == NULL) return NULL;
        Py_DECREF(r);
    }
    Py_DECREF(callback);
    r = PyObject_CallMethod(mon, "set_events", "il", FLOOR_TOOL, events[0] | events[1]);
    if (r == NULL) return NULL;
    Py_DECREF(r);
    return PyUnicode_FromString("sys.monitoring PY_START+PY_RETURN, empty C callbacks");
#else
    PyEval_SetProfile(empty_profile, NULL);
    return PyUnicode_FromString("PyEval_SetProfile, empty C function");
#endif
}

static PyMethodDef methods[] = {{"install", install, METH_NOARGS, "Install the empty hooks."},
                                {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "vzfloor", NULL, -1, methods};

PyMODINIT_FUNC PyInit_vzfloor(void) { return PyModule_Create(&module_def); }
