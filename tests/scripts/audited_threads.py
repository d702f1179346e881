# An audit hook of the program's sees only the events python raises: none for vztrace's own
# work in each new thread (3.11 put its profile hook on every thread with
# PyEval_SetProfile, which raises "sys.setprofile"; a hook that refuses it printed
# "Exception ignored" and the thread went unrecorded).
import sys
import threading

seen = []


def hook(event, args):
    if event in ("sys.setprofile", "sys.settrace"):
        seen.append(event)
        raise RuntimeError(f"{event} refused")


def work():
    return sum(range(10))


sys.addaudithook(hook)
threads = [threading.Thread(target=work) for _ in range(3)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("events seen:", seen)
