# A child process runs a thread that records more than a chunk of calls, waits until the
# first chunk is in its stream (its thread described there as vztrace knew it then), then
# renames itself and ends. Once its stream holds the new name, the child kills itself with
# SIGKILL: the name an ended thread had last is in what was written by then, not only in
# what the end of the recording would have added.
import glob
import multiprocessing
import os
import signal
import threading
import time


def leaf(i):
    return i


def worker():
    for i in range(5000):
        leaf(i)
    wait_for(b"leaf (")
    threading.current_thread().name = "renamed-at-its-end"


def stream_holds(text):
    pattern = os.path.join(os.environ.get("VZTRACE_PARTS_DIR", "/nonexistent"),
                           f"{os.getpid()}-*.pftrace")
    for path in glob.glob(pattern):
        with open(path, "rb") as stream:
            if text in stream.read():
                return True
    return False


def wait_for(text, kick=False):
    """Until the stream holds `text` (30 s at most). `kick`: a thread that starts hands the
    threads that have exited to vztrace's writer."""
    deadline = time.monotonic() + 30
    while not stream_holds(text) and time.monotonic() < deadline:
        if kick:
            starter = threading.Thread(target=leaf, args=(0,))
            starter.start()
            starter.join()
        time.sleep(0.01)


def victim():
    first = threading.Thread(target=worker)
    first.start()
    first.join()
    wait_for(b"renamed-at-its-end", kick=True)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    doomed = multiprocessing.get_context("fork").Process(target=victim, name="Victim")
    doomed.start()
    doomed.join()
    print("victim exit", doomed.exitcode)
