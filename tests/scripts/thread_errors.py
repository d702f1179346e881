# _thread's own errors: a thread function that is not callable, and one that raises (the
# unraisable hook names the program's function).
import _thread
import re
import sys

reported = _thread.allocate_lock()
reported.acquire()


def hook(unraisable):
    message = re.sub(r" at 0x[0-9a-fA-F]+", "", unraisable.err_msg or "")
    target = getattr(unraisable.object, "__qualname__", repr(unraisable.object))
    print("unraisable:", message, target, type(unraisable.exc_value).__name__, flush=True)
    reported.release()


sys.unraisablehook = hook
starters = [_thread.start_new_thread]
if hasattr(_thread, "start_joinable_thread"):
    starters.append(_thread.start_joinable_thread)
for start in starters:
    for bad in (1, None):
        try:
            start(bad, ())
        except TypeError as error:
            print("TypeError:", error)


def failing():
    raise ValueError("in the thread")


_thread.start_new_thread(failing, ())
reported.acquire()
print("done")
