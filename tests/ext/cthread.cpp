// A thread that C code starts and that runs Python on a thread state of its own
// (PyThreadState_New), the GIL taken with PyEval_AcquireThread, as pybind11's
// gil_scoped_acquire does it, or with PyEval_RestoreThread; the state cleared and deleted
// at the end. threading and _thread never see it.
#include <Python.h>

#include <pthread.h>

namespace {

struct Work {
    PyInterpreterState* interpreter;
    PyObject* callable;
    int calls;
    bool restore;  // PyEval_RestoreThread rather than PyEval_AcquireThread
};

void* run(void* argument) {
    auto* work = static_cast<Work*>(argument);
    PyThreadState* thread = PyThreadState_New(work->interpreter);
    if (work->restore) {
        PyEval_RestoreThread(thread);
    } else {
        PyEval_AcquireThread(thread);
    }
    for (int i = 0; i < work->calls; ++i) {
        PyObject* result = PyObject_CallNoArgs(work->callable);
        if (result == nullptr) PyErr_Print();
        Py_XDECREF(result);
    }
    PyThreadState_Clear(thread);
    PyThreadState_DeleteCurrent();
    return nullptr;
}

// call_on_new_thread(callable, calls, restore=False): calls `callable` that many times on a
// thread of its own, and returns once that thread has ended.
PyObject* call_on_new_thread(PyObject*, PyObject* args) {
    Work work{PyInterpreterState_Get(), nullptr, 0, false};
    int restore = 0;
    if (!PyArg_ParseTuple(args, "Oi|p", &work.callable, &work.calls, &restore)) return nullptr;
    work.restore = restore != 0;
    pthread_t thread;
    int started = 0;
    Py_BEGIN_ALLOW_THREADS started = pthread_create(&thread, nullptr, run, &work);
    if (started == 0) pthread_join(thread, nullptr);
    Py_END_ALLOW_THREADS if (started != 0) {
        PyErr_SetString(PyExc_RuntimeError, "cannot start the thread");
        return nullptr;
    }
    Py_RETURN_NONE;
}

PyMethodDef g_methods[] = {{"call_on_new_thread", call_on_new_thread, METH_VARARGS,
                            "Calls a callable N times on a thread of its own."},
                           {nullptr, nullptr, 0, nullptr}};

PyModuleDef g_module = {
    PyModuleDef_HEAD_INIT, "cthread", nullptr, -1, g_methods, nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit_cthread() { return PyModule_Create(&g_module); }
