// A thread of the program's that works on its descriptors without the GIL, as a C
// library's I/O thread does (a logger, an RPC client). It keeps reading and writing the
// descriptors it was given for as long as the process lives. Under python their numbers
// stay the program's files to the end; should something close one and open a file of its
// own under the same number, the thread reads from that file and writes into it, as such
// a thread would.
#include <Python.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

namespace {

struct Watched {
    int fd;
    dev_t device;
    ino_t inode;
};

void* watch_loop(void* argument) {
    auto* watched = static_cast<std::vector<Watched>*>(argument);
    char byte = 0;
    while (true) {
        for (const Watched& w : *watched) {
            struct stat st {};
            if (::fstat(w.fd, &st) != 0 || !S_ISREG(st.st_mode)) continue;
            if (st.st_dev == w.device && st.st_ino == w.inode) continue;
            // A regular file that is not the one the program opened under this number.
            const int flags = ::fcntl(w.fd, F_GETFL);
            if (flags < 0) continue;
            if ((flags & O_ACCMODE) != O_WRONLY && ::read(w.fd, &byte, 1) < 0) continue;
            if ((flags & O_ACCMODE) != O_RDONLY && ::write(w.fd, "STRAY", 5) < 0) continue;
        }
    }
    return nullptr;
}

// watch(fd, ...): starts the thread on these descriptors, which must be open.
PyObject* watch(PyObject*, PyObject* args) {
    auto* watched = new std::vector<Watched>();  // the thread's for the process's lifetime
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); ++i) {
        const long fd = PyLong_AsLong(PyTuple_GET_ITEM(args, i));
        if (fd == -1 && PyErr_Occurred()) return nullptr;
        struct stat st {};
        if (::fstat(static_cast<int>(fd), &st) != 0) return PyErr_SetFromErrno(PyExc_OSError);
        watched->push_back({static_cast<int>(fd), st.st_dev, st.st_ino});
    }
    pthread_t thread;
    if (pthread_create(&thread, nullptr, watch_loop, watched) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "cannot start the thread");
        return nullptr;
    }
    pthread_detach(thread);
    Py_RETURN_NONE;
}

PyMethodDef g_methods[] = {
    {"watch", watch, METH_VARARGS, "Starts a thread that uses these descriptors to the end."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef g_module = {
    PyModuleDef_HEAD_INIT, "fdwatch", nullptr, -1, g_methods, nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit_fdwatch() { return PyModule_Create(&g_module); }
