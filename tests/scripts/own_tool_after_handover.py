# The program's own sys.monitoring tool counts C returns and C raises while recursions
# cross the frame hook's depth (150), where it gives way. Python sends those events for
# C callables only: never for a plain Python function, which it calls inline. The hook
# gives way once: argv[1] says which recursion crosses it, by returns or by an exception.
import collections
import sys

seen = collections.Counter()


def on_c_return(code, offset, callable, arg0):
    seen["C_RETURN", getattr(callable, "__name__", "?")] += 1


def on_c_raise(code, offset, callable, arg0):
    seen["C_RAISE", getattr(callable, "__name__", "?")] += 1


def down(n):
    return n if n == 200 else down(n + 1)


def boom(n):
    if n == 200:
        raise KeyError(n)
    return boom(n + 1)


if hasattr(sys, "monitoring"):
    mon = sys.monitoring
    mon.use_tool_id(3, "mine")
    mon.register_callback(3, mon.events.C_RETURN, on_c_return)
    mon.register_callback(3, mon.events.C_RAISE, on_c_raise)
    mon.set_events(3, mon.events.CALL | mon.events.C_RETURN | mon.events.C_RAISE)
if sys.argv[1] == "return":
    down(0)
else:
    try:
        boom(0)
    except KeyError:
        pass
if hasattr(sys, "monitoring"):
    mon.set_events(3, 0)
print(sorted(seen.items()))
