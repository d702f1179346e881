# Python's perf support (3.12+): on from the start with -X perf, and switched by the
# program at run time. Its map file, which python writes for perf, is removed at the end.
import os
import sys


def f():
    return 1


f()
if hasattr(sys, "activate_stack_trampoline"):
    print("at start", sys.is_stack_trampoline_active())
    sys.deactivate_stack_trampoline()
    sys.activate_stack_trampoline("perf")
    f()
    print("activated", sys.is_stack_trampoline_active())
    sys.deactivate_stack_trampoline()
else:
    f()
map_file = f"/tmp/perf-{os.getpid()}.map"
if os.path.exists(map_file):
    os.remove(map_file)
print("done")
