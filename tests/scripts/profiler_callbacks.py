# The program's own profile function and sys.monitoring callbacks are called by CPython
# under its tracing guard, which sys.monitoring and the profile hook respect: their frames
# are not the program's calls. The frame hook recorded them (201 calls of own_profile
# here), so the counts depended on the mechanism.
import sys


def leaf():
    pass


def own_profile(frame, event, arg):
    pass


sys.setprofile(own_profile)
for _ in range(100):
    leaf()
sys.setprofile(None)

if sys.version_info >= (3, 12):
    monitoring = sys.monitoring
    monitoring.use_tool_id(monitoring.PROFILER_ID, "own")

    def on_start(code, offset):
        pass

    monitoring.register_callback(monitoring.PROFILER_ID, monitoring.events.PY_START, on_start)
    monitoring.set_events(monitoring.PROFILER_ID, monitoring.events.PY_START)
    for _ in range(10):
        leaf()
    monitoring.set_events(monitoring.PROFILER_ID, 0)
    monitoring.free_tool_id(monitoring.PROFILER_ID)
print("done")
