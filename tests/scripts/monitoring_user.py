# A program that uses sys.monitoring tool ids CPython's own tests use, and cProfile.
import cProfile
import io
import pstats
import sys


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


if hasattr(sys, "monitoring"):
    for tool in (0, 2, 3, 4):
        sys.monitoring.use_tool_id(tool, f"user-{tool}")
        print("took tool", tool, sys.monitoring.get_tool(tool))
        sys.monitoring.free_tool_id(tool)

profiler = cProfile.Profile()
profiler.enable()
fib(10)
profiler.disable()
stream = io.StringIO()
stats = pstats.Stats(profiler, stream=stream)
print("cProfile saw fib calls:", stats.stats[next(k for k in stats.stats if k[2] == "fib")][1])
