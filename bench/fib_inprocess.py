# The in-process figure: ns per Python call of fib(25), best of several rounds, under the
# mode named in argv[1]: plain, floor (vzfloor's empty hooks), floor_call (with CALL, as
# exact C calls need), floor_frame (a frame-evaluation hook storing two records; with
# floor_frame_monotonic, their times from clock_gettime; with floor_frame_call, C calls
# seen too: CALL on 3.12+, the profile function on 3.11), cprofile,
# or traced (this script run under vztrace, which measures itself the same way). Prints
# JSON.
import json
import os
import sys
import time

CALLS = 242785  # calls of fib made by fib(25)
ROUNDS = int(os.environ.get("VZBENCH_FIB_ROUNDS", "15"))


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def best_ns_per_call():
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        fib(25)
        best = min(best, time.perf_counter_ns() - start)
    return best / CALLS


mode = sys.argv[1]
hook = mode
if mode in ("floor", "floor_call", "floor_frame", "floor_frame_monotonic", "floor_frame_call"):
    sys.path.insert(0, sys.argv[2])
    import vzfloor
    hook = {"floor": vzfloor.install, "floor_call": vzfloor.install_with_call,
            "floor_frame": vzfloor.install_frame_hook,
            "floor_frame_monotonic": vzfloor.install_frame_hook_monotonic,
            "floor_frame_call": vzfloor.install_frame_hook_with_call}[mode]()
elif mode == "cprofile":
    import cProfile
    profiler = cProfile.Profile()
    profiler.enable()
result = best_ns_per_call()
print(json.dumps({"mode": mode, "hook": hook, "ns_per_call": result}))
