# Python run on threads that C code starts, each with a new thread state that threading and
# _thread never see: a ctypes callback as a pthread's start routine (PyGILState_Ensure),
# twice, and two threads of the cthread extension (PyThreadState_New, then
# PyEval_AcquireThread as pybind11 does it, or PyEval_RestoreThread). argv[1]: the directory
# holding the built extension.
# On those threads: body x2 and leaf x6 with builtins.len x6; then leaf x3 with builtins.len x3;
# then leaf x2 with builtins.len x2.
import ctypes
import sys

libc = ctypes.CDLL(None)


def leaf(i=0):
    return len([i])


@ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
def body(arg):
    for i in range(3):
        leaf(i)
    return None


for _ in range(2):
    thread = ctypes.c_ulong()
    libc.pthread_create(ctypes.byref(thread), None, body, None)
    libc.pthread_join(thread, None)

sys.path.insert(0, sys.argv[1])
import cthread  # noqa: E402

cthread.call_on_new_thread(leaf, 3)
cthread.call_on_new_thread(leaf, 2, True)
print("joined")
