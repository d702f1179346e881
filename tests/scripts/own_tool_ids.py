# A program that uses every sys.monitoring tool id, 5 (vztrace's first choice) included,
# the way python lets it: each id it names is free, whatever vztrace holds.
import sys

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def lengths(items):
    return [len(item) for item in items]


import helper_module  # noqa: E402  (its function runs once before the program's tools)

if not hasattr(sys, "monitoring"):  # 3.11
    print("no sys.monitoring:", fib(7))
    sys.exit(0)
mon = sys.monitoring
E = mon.events
print("free at start:", [mon.get_tool(tool) for tool in range(6)])
print("events at start:", [mon.get_events(tool) for tool in range(6)])
print("local events of 5:", mon.get_local_events(5, fib.__code__))
print("free_tool_id(5):", mon.free_tool_id(5))
for call in (lambda: mon.set_events(5, E.PY_START),
             lambda: mon.set_local_events(5, fib.__code__, E.PY_START)):
    try:
        call()
        print("no error")
    except ValueError as error:
        print("ValueError:", error)

# A callback registered on an id the program never took, as python allows.
starts = []
print("register on 5:", mon.register_callback(5, E.PY_START, lambda code, offset: None))
mon.use_tool_id(5, "mine")
print("took 5:", mon.get_tool(5))
mon.register_callback(5, E.PY_START, lambda code, offset: starts.append(code.co_name))
calls = []
mon.register_callback(5, E.CALL, lambda code, offset, callee, arg0: calls.append(callee))
returns = []
mon.register_callback(5, E.C_RETURN, lambda code, offset, callee, arg0: returns.append(callee))
mon.set_events(5, E.PY_START | E.CALL | E.C_RETURN | E.C_RAISE)
fib(5)
helper_module.helper()
print("lengths:", lengths(["a", "bb", "ccc"]))
mon.set_events(5, 0)
print("tool 5 saw starts:", sorted(set(starts)), len(starts))
print("tool 5 saw len calls:", sum(1 for callee in calls if callee is len))
# Under python the C return of the set_events call that turned them on is not sent.
print("tool 5 saw C returns:", [getattr(callee, "__name__", "?") for callee in returns])

# Four more ids (vztrace keeps the sixth: with all six taken, the last would be refused),
# then all released.
for tool in (0, 1, 2, 3):
    mon.use_tool_id(tool, f"user-{tool}")
print("all taken:", [mon.get_tool(tool) for tool in range(6)])
fib(6)
for tool in range(6):
    mon.free_tool_id(tool)
print("free at end:", [mon.get_tool(tool) for tool in range(6)])
print("all events at end:", mon._all_events())
fib(4)
