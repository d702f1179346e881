# The module functions vztrace stands in for look as python's own do: self, module, names,
# signature and doc (print with --log-print).
import _signal
import _thread
import inspect
import os
import signal
import sys

functions = [print, os._exit, signal.signal, signal.getsignal, _signal.signal, _signal.getsignal,
             _thread.start_new_thread, sys.setprofile, sys.getprofile]
for name in ("start_new", "start_joinable_thread"):
    if hasattr(_thread, name):
        functions.append(getattr(_thread, name))
if hasattr(sys, "_setprofileallthreads"):
    functions.append(sys._setprofileallthreads)
if hasattr(sys, "monitoring"):
    m = sys.monitoring
    functions += [m.get_events, m._all_events, m.register_callback, m.set_events,
                  m.set_local_events]

for function in functions:
    try:
        signature = str(inspect.signature(function))
    except ValueError as error:
        signature = f"no signature ({error})"
    print(function.__qualname__, repr(getattr(function, "__self__", None)),
          function.__module__, type(function).__name__, signature,
          len(function.__doc__ or ""))
