# An audit hook of the program's sees the function each new thread runs, as python shows
# it (3.12+ raise "_thread.start_new_thread", 3.13 "_thread.start_joinable_thread" too;
# 3.11 raises neither): the program's function, not vztrace's bootstrap that calls it.
import _thread
import sys
import threading

seen = []


def hook(event, args):
    if event.startswith("_thread.start"):
        seen.append((event, args))


def work(lock):
    lock.release()


def nothing():
    pass


sys.addaudithook(hook)
done = _thread.allocate_lock()
done.acquire()
_thread.start_new_thread(work, (done,))
done.acquire()
thread = threading.Thread(target=nothing, name="worker")
thread.start()
thread.join()
if hasattr(_thread, "start_joinable_thread"):
    _thread.start_joinable_thread(nothing).join()
for event, args in seen:
    function = args[0]
    named = getattr(function, "__qualname__", type(function).__name__)
    print(event, len(args), named, function in (work, nothing, thread._bootstrap))
print("events:", len(seen))
