// A frame-evaluation function of the program's own, as torch.compile's dynamo or a
// debugger installs one: the e2e tests load it in the middle of a traced run. It calls
// CPython's default evaluation directly (it does not chain to the function it replaces)
// and counts the frames it sees.
#include <Python.h>

namespace {

long g_frames = 0;

PyObject* evaluate(PyThreadState* thread, _PyInterpreterFrame* frame, int throwing) {
    ++g_frames;
    return _PyEval_EvalFrameDefault(thread, frame, throwing);
}

PyObject* install(PyObject*, PyObject*) {
    _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(), evaluate);
    Py_RETURN_NONE;
}

PyObject* uninstall(PyObject*, PyObject*) {
    _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(), _PyEval_EvalFrameDefault);
    Py_RETURN_NONE;
}

PyObject* frames(PyObject*, PyObject*) { return PyLong_FromLong(g_frames); }

PyMethodDef g_methods[] = {
    {"install", install, METH_NOARGS, "Installs this module's frame-evaluation function."},
    {"uninstall", uninstall, METH_NOARGS, "Puts CPython's default back."},
    {"frames", frames, METH_NOARGS, "How many frames this module's function evaluated."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef g_module = {
    PyModuleDef_HEAD_INIT, "evalhook", nullptr, -1, g_methods, nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit_evalhook() { return PyModule_Create(&g_module); }
