# Profile functions of the program's that are on when vztrace's frame hook gives way (here
# at 150 frames deep) on 3.11, where one profile function a thread is all CPython has: the
# main thread's sys.setprofile function, another thread's enabled cProfile, and a cProfile
# imported before and enabled after. Every call must stay recorded, and each profiler must
# see what it sees under python.
import cProfile
import sys
import threading

calls = {"leaf": 0, "down": 0}
seen = {"main": 0, "other": 0}


def leaf():
    calls["leaf"] += 1


def down(n):
    calls["down"] += 1
    return down(n - 1) if n else leaf()


def mine(frame, event, arg):
    if event == "call" and frame.f_code.co_name == "leaf":
        seen["main"] += 1


ready = threading.Event()
handed_over = threading.Event()


def other():
    profiler = cProfile.Profile()
    profiler.enable()
    leaf()
    ready.set()
    handed_over.wait()
    leaf()
    profiler.disable()
    leaf()
    seen["other"] = sum(
        1 for entry in profiler.getstats() if getattr(entry.code, "co_name", "") == "leaf"
    )


thread = threading.Thread(target=other)
thread.start()
ready.wait()
sys.setprofile(mine)
leaf()
down(200)  # the frame hook gives way here, with both profilers on
leaf()
sys.setprofile(None)
handed_over.set()
thread.join()
leaf()
later = cProfile.Profile()
later.enable()
leaf()
later.disable()
leaf()
print(calls, seen)
