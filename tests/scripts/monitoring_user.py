# A program that uses sys.monitoring tool ids CPython's own tests use, and cProfile.
import cProfile
import io
import pstats
import sys


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def show_events(when):
    # What CPython's test_monitoring checks around each test: no tool has events on.
    print(when, "events of tools 0-5:", [sys.monitoring.get_events(tool) for tool in range(6)])
    print(when, "all events:", sys.monitoring._all_events())


if hasattr(sys, "monitoring"):
    for tool in (0, 2, 3, 4):
        sys.monitoring.use_tool_id(tool, f"user-{tool}")
        print("took tool", tool, sys.monitoring.get_tool(tool))
        sys.monitoring.free_tool_id(tool)
    show_events("before")
    starts = []
    sys.monitoring.use_tool_id(2, "counter")
    sys.monitoring.register_callback(2, sys.monitoring.events.PY_START,
                                     lambda code, offset: starts.append(code.co_name))
    sys.monitoring.set_events(2, sys.monitoring.events.PY_START)
    show_events("with tool 2")
    fib(3)
    sys.monitoring.set_events(2, 0)
    sys.monitoring.free_tool_id(2)
    print("tool 2 saw starts:", starts)
    show_events("after")

profiler = cProfile.Profile()
profiler.enable()
fib(10)
profiler.disable()
stream = io.StringIO()
stats = pstats.Stats(profiler, stream=stream)
print("cProfile saw fib calls:", stats.stats[next(k for k in stats.stats if k[2] == "fib")][1])
