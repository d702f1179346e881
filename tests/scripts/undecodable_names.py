# Two files whose names differ only in bytes that are not UTF-8 (Python's paths hold them
# as lone surrogates), each with a function f, and a function whose name is such a
# surrogate: each is a function of its own in the trace.
import os
import runpy
import sys

directory = sys.argv[1]
for raw in (b"x\xff.py", b"x\xfe.py"):
    path = os.path.join(directory, os.fsdecode(raw))
    with open(path, "w") as file:
        file.write("def f():\n    return 1\n\nf()\n")
    runpy.run_path(path)


def g():
    return 2


for name in ("\udcff", "\udcfe"):
    renamed = g.__code__.replace(co_name=name, co_qualname=name)
    type(g)(renamed, globals())()
