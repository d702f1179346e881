# Profilers and sys.monitoring tools the program installs itself see exactly python's
# events: none of the call that installed them (vztrace instruments every call site).
import profile
import pstats
import io
import sys
import threading


def work(n):
    return sorted(str(i) for i in range(n))


def describe(frame, event, arg):
    name = getattr(arg, "__name__", None) if event.startswith("c_") else frame.f_code.co_name
    return f"{event}:{name}"


events = []


def recorder(frame, event, arg):
    events.append(describe(frame, event, arg))


sys.setprofile(recorder)
work(3)
sys.setprofile(None)
print("setprofile", events)
sys.setprofile(recorder)
print("getprofile is the program's", sys.getprofile() is recorder)
sys.setprofile(None)

events.clear()
threading.setprofile(recorder)
print("threading.getprofile", threading.getprofile() is recorder)
sys.setprofile(recorder)  # threading.setprofile sets it for new threads only
work(2)
sys.setprofile(None)
threading.setprofile(None)
print("threading.setprofile", events)

# The pure-Python profiler checks every return against its own stack ("Bad return").
profiler = profile.Profile()
profiler.runcall(work, 5)
stats = pstats.Stats(profiler, stream=io.StringIO())
print("profile calls", stats.total_calls, stats.prim_calls)

if sys.version_info >= (3, 12):
    mon = sys.monitoring
    E = mon.events
    TOOL = 3
    seen = []

    def on_c_return(code, offset, callable, arg0):
        seen.append(("C_RETURN", callable.__name__))

    def on_call(code, offset, callable, arg0):
        seen.append(("CALL", getattr(callable, "__name__", "?")))

    mon.use_tool_id(TOOL, "program's own")
    first = mon.register_callback(TOOL, E.C_RETURN, on_c_return)
    mon.register_callback(TOOL, E.CALL, on_call)
    mon.set_events(TOOL, E.CALL)
    len("abc")
    mon.set_events(TOOL, 0)
    print("monitoring", first, seen)
    print("register_callback answers the program's",
          mon.register_callback(TOOL, E.C_RETURN, None) is on_c_return)
    # Turned on in the other order: events first, then the callback.
    seen.clear()
    mon.set_events(TOOL, E.CALL)
    mon.register_callback(TOOL, E.C_RETURN, on_c_return)
    abs(-1)
    mon.set_events(TOOL, 0)
    print("monitoring, callback last", seen)
    code = work.__code__
    seen.clear()
    mon.set_local_events(TOOL, code, E.CALL)
    work(1)
    mon.set_local_events(TOOL, code, 0)
    print("local events", seen)
    mon.register_callback(TOOL, E.C_RETURN, None)
    mon.register_callback(TOOL, E.CALL, None)
    mon.free_tool_id(TOOL)
