# A program that keeps data of its own on code objects (co_extra, as debuggers and JITs
# do), with a function that frees it, through ctypes. CPython calls that function for
# every index a code object's extras reach, also with nothing stored there.
import ctypes

api = ctypes.pythonapi
FreeFunction = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
request = getattr(api, "PyUnstable_Eval_RequestCodeExtraIndex", None)
if request is None:
    request = api._PyEval_RequestCodeExtraIndex
request.argtypes = (FreeFunction,)
request.restype = ctypes.c_ssize_t
set_extra = getattr(api, "PyUnstable_Code_SetExtra", None)
if set_extra is None:
    set_extra = api._PyCode_SetExtra
set_extra.argtypes = (ctypes.py_object, ctypes.c_ssize_t, ctypes.c_void_p)
set_extra.restype = ctypes.c_int

freed = []
free_function = FreeFunction(freed.append)
index = request(free_function)

# One code object it keeps data on, freed with its function.
namespace = {}
exec("def tagged():\n    return 1\n", namespace)
namespace["tagged"]()
assert set_extra(namespace["tagged"].__code__, index, 12345) == 0
# Code objects it never touches, run and freed.
for round in range(3):
    exec(f"def untagged_{round}():\n    return 2\nuntagged_{round}()\n", {})
namespace.clear()
print("freed:", freed)
# From here on the free function is gone (the module's globals are cleared at exit): code
# objects freed after that must not call it.
