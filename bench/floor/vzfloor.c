/* The floor: the cheapest hooks CPython allows, doing no more than a recorder must. bench/run
 * times fib with them installed to show what any tracer built on the same mechanism pays.
 * 3.12+: sys.monitoring callbacks for PY_START and PY_RETURN that read the time stamp
 * counter and store 16 bytes, as callable objects that CPython calls directly (vectorcall,
 * as vztrace's are: a builtin function's call adds a keyword check, a thread-state lookup
 * and a recursion guard); with install_with_call() an empty CALL callback too: what a
 * tracer that records every C call exactly pays (CALL fires at every call site, Python
 * callees included, and has nothing to record for them).
 * 3.11: an empty PyEval_SetProfile function (it sees C calls either way).
 * install_frame_hook(): a frame-evaluation function (PEP 523) that reads the time stamp
 * counter and stores 16 bytes at each frame's start and end, as a recorder of Python frames
 * through that hook must at least; install_frame_hook_monotonic() the same with
 * clock_gettime(CLOCK_MONOTONIC), the clock vztrace reads where the TSC is not the kernel's;
 * install_frame_hook_with_call() the frame hook with the empty CALL callback (3.12+) or the
 * empty profile function (3.11) for C calls: the floor of vztrace's default where the frame
 * hook records Python frames and C calls are recorded too.
 * clock_costs(): what one time stamp costs on this machine, read back to back (every
 * recorded call takes two). */
#include <Python.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <x86intrin.h>

/* Two 16-byte records a frame, into a small ring that stays in the cache. */
struct floor_record {
    uint64_t ticks;
    uint64_t what;
};
static struct floor_record ring[4096];
static unsigned ring_next = 0;

static PyObject *frame_floor(PyThreadState *tstate, struct _PyInterpreterFrame *frame,
                             int throwflag) {
    ring[ring_next++ & 4095] = (struct floor_record){__rdtsc(), (uintptr_t)frame};
    PyObject *result = _PyEval_EvalFrameDefault(tstate, frame, throwflag);
    ring[ring_next++ & 4095] = (struct floor_record){__rdtsc(), result != NULL};
    return result;
}

/* The same with clock_gettime(CLOCK_MONOTONIC) for the time: what vztrace reads where the
 * kernel's clocksource is not the TSC (a VM's kvm-clock). */
static uint64_t monotonic_ticks(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static PyObject *frame_floor_monotonic(PyThreadState *tstate, struct _PyInterpreterFrame *frame,
                                       int throwflag) {
    ring[ring_next++ & 4095] = (struct floor_record){monotonic_ticks(), (uintptr_t)frame};
    PyObject *result = _PyEval_EvalFrameDefault(tstate, frame, throwflag);
    ring[ring_next++ & 4095] = (struct floor_record){monotonic_ticks(), result != NULL};
    return result;
}

/* A sys.monitoring callback that CPython calls through its own vectorcall: `records` says
 * whether it reads the time and stores a record (PY_START, PY_RETURN) or does nothing
 * (CALL, whose Python callees a recorder leaves to PY_START). */
typedef struct {
    PyObject_HEAD vectorcallfunc vectorcall;
} floor_callback;

static PyObject *record_event(PyObject *self, PyObject *const *args, size_t nargsf,
                              PyObject *kwnames) {
    (void)self;
    (void)nargsf;
    (void)kwnames;
    ring[ring_next++ & 4095] = (struct floor_record){__rdtsc(), (uintptr_t)args[0]};
    Py_RETURN_NONE;
}

static PyObject *ignore_event(PyObject *self, PyObject *const *args, size_t nargsf,
                              PyObject *kwnames) {
    (void)self;
    (void)args;
    (void)nargsf;
    (void)kwnames;
    Py_RETURN_NONE;
}

static PyTypeObject floor_callback_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vzfloor.callback",
    .tp_basicsize = sizeof(floor_callback),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(floor_callback, vectorcall),
    .tp_call = PyVectorcall_Call,
};

static PyObject *new_callback(vectorcallfunc function) {
    if (PyType_Ready(&floor_callback_type) < 0) return NULL;
    floor_callback *callback = PyObject_New(floor_callback, &floor_callback_type);
    if (callback != NULL) callback->vectorcall = function;
    return (PyObject *)callback;
}

static int empty_profile(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) {
    (void)obj;
    (void)frame;
    (void)what;
    (void)arg;
    return 0;
}

#define FLOOR_TOOL 3

/* sys.monitoring's events for the floor: PY_START and PY_RETURN recorded (unless
 * `python_frames` is 0: the frame hook has them), CALL ignored when `with_call`. */
static int use_events(int python_frames, int with_call) {
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *mon = PySys_GetObject("monitoring");
    if (mon == NULL) return -1;
    PyObject *r = PyObject_CallMethod(mon, "use_tool_id", "is", FLOOR_TOOL, "vzfloor");
    if (r == NULL) return -1;
    Py_DECREF(r);
    const struct {
        long event;
        int wanted;
        vectorcallfunc function;
    } events[3] = {{1 /* PY_START */, python_frames, record_event},
                   {4 /* PY_RETURN */, python_frames, record_event},
                   {16 /* CALL */, with_call, ignore_event}};
    long mask = 0;
    for (int i = 0; i < 3; i++) {
        if (!events[i].wanted) continue;
        PyObject *callback = new_callback(events[i].function);
        if (callback == NULL) return -1;
        r = PyObject_CallMethod(mon, "register_callback", "ilO", FLOOR_TOOL, events[i].event,
                                callback);
        Py_DECREF(callback);
        if (r == NULL) return -1;
        Py_DECREF(r);
        mask |= events[i].event;
    }
    r = PyObject_CallMethod(mon, "set_events", "il", FLOOR_TOOL, mask);
    if (r == NULL) return -1;
    Py_DECREF(r);
#else
    (void)python_frames;
    (void)with_call;
    PyEval_SetProfile(empty_profile, NULL);
#endif
    return 0;
}

static PyObject *install_events(int with_call) {
    if (use_events(1, with_call) < 0) return NULL;
#if PY_VERSION_HEX >= 0x030C0000
    return PyUnicode_FromString(
        with_call ? "sys.monitoring PY_START+PY_RETURN (rdtsc, a 16-byte store) + CALL (empty), "
                    "callbacks called directly"
                  : "sys.monitoring PY_START+PY_RETURN (rdtsc, a 16-byte store), callbacks "
                    "called directly");
#else
    return PyUnicode_FromString("PyEval_SetProfile, empty C function");
#endif
}

static PyObject *install(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    return install_events(0);
}

static PyObject *install_with_call(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    return install_events(1);
}

static PyObject *install_frame_hook(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(), frame_floor);
    return PyUnicode_FromString("frame-evaluation hook (PEP 523), rdtsc and two 16-byte stores");
}

static PyObject *install_frame_hook_monotonic(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(), frame_floor_monotonic);
    return PyUnicode_FromString(
        "frame-evaluation hook (PEP 523), clock_gettime and two 16-byte stores");
}

static PyObject *install_frame_hook_with_call(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    if (use_events(0, 1) < 0) return NULL;
    _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(), frame_floor);
#if PY_VERSION_HEX >= 0x030C0000
    return PyUnicode_FromString(
        "frame hook (rdtsc, two 16-byte stores) + sys.monitoring CALL "
        "(empty, called directly)");
#else
    return PyUnicode_FromString(
        "frame hook (rdtsc, two 16-byte stores) + PyEval_SetProfile "
        "(empty)");
#endif
}

static double monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1e9 + (double)now.tv_nsec;
}

static volatile uint64_t clock_sink; /* keeps the reads from being optimized away */

/* ns per read, the best of 5 rounds of 1 M reads: throughput, as in a hook, where the
 * reads do not wait on one another. */
static double best_ns_per_read(int use_tsc) {
    enum { kReads = 1000000 };
    double best = 1e300;
    for (int round = 0; round < 5; round++) {
        uint64_t sum = 0;
        const double start = monotonic_ns();
        for (int i = 0; i < kReads; i++) {
            if (use_tsc) {
                sum += __rdtsc();
            } else {
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                sum += (uint64_t)now.tv_nsec;
            }
        }
        const double ns = (monotonic_ns() - start) / kReads;
        clock_sink = sum;
        if (ns < best) best = ns;
    }
    return best;
}

static PyObject *clock_costs(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    return Py_BuildValue("{s:d,s:d}", "tsc_read_ns", best_ns_per_read(1), "clock_gettime_ns",
                         best_ns_per_read(0));
}

static PyMethodDef methods[] = {
    {"install", install, METH_NOARGS, "Install the empty hooks."},
    {"install_with_call", install_with_call, METH_NOARGS, "The empty hooks, CALL included."},
    {"install_frame_hook", install_frame_hook, METH_NOARGS, "The frame hook's floor."},
    {"install_frame_hook_monotonic", install_frame_hook_monotonic, METH_NOARGS,
     "The frame hook's floor with clock_gettime(CLOCK_MONOTONIC) for the time."},
    {"install_frame_hook_with_call", install_frame_hook_with_call, METH_NOARGS,
     "The frame hook's floor with C calls seen (CALL, or the profile function on 3.11)."},
    {"clock_costs", clock_costs, METH_NOARGS,
     "ns per time-stamp counter read and per "
     "clock_gettime(CLOCK_MONOTONIC)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "vzfloor", NULL, -1, methods};

PyMODINIT_FUNC PyInit_vzfloor(void) { return PyModule_Create(&module_def); }
