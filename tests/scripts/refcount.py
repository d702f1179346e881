# Reference call counts by a pure-Python sys.setprofile counter, named as vztrace names
# them. Usage: refcount.py PROGRAM -> JSON {name: count} on stdout, then the program runs.
import json
import os
import runpy
import sys
import types

counts = {}


def defining_type(owner, name):
    # The type whose method descriptor the bound method comes from: a class method's is
    # in the class's own MRO, as a static method's and a type's __new__ (bound to the
    # type itself) are; any other in its instance's type's.
    if isinstance(owner, type):
        for cls in owner.__mro__:
            found = cls.__dict__.get(name)
            kind = type(found).__name__
            if kind in ("classmethod_descriptor", "staticmethod"):
                return cls
            if name == "__new__" and getattr(found, "__self__", None) is cls:
                return cls
    for cls in type(owner).__mro__:
        if type(cls.__dict__.get(name)).__name__ == "method_descriptor":
            return cls
    return type(owner)


def c_name(func):
    owner = getattr(func, "__self__", None)
    if isinstance(owner, types.ModuleType):
        return f"{owner.__name__}.{func.__name__}"
    if owner is not None:
        return f"{defining_type(owner, func.__name__).__name__}.{func.__name__}"
    if func.__module__ is None and "." in func.__qualname__:
        return func.__qualname__  # a static method (str.maketrans): its __self__ is None
    return f"{func.__module__}.{func.__name__}"


def profiler(frame, event, arg):
    if event == "call":
        code = frame.f_code
        key = f"{code.co_qualname} ({os.path.abspath(code.co_filename)}:{code.co_firstlineno})"
    elif event == "c_call" and os.path.abspath(frame.f_code.co_filename) == program:
        key = c_name(arg)
    else:
        return
    counts[key] = counts.get(key, 0) + 1


program = os.path.abspath(sys.argv[1])
sys.argv = sys.argv[1:]
sys.setprofile(profiler)
try:
    runpy.run_path(program, run_name="__main__")
finally:
    sys.setprofile(None)
    with open(os.environ["REFCOUNT_OUT"], "w") as out:
        json.dump(counts, out)
