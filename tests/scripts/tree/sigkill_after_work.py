# A child process calls leaf() 5000 times, waits until vztrace's writer has written its
# first chunk of records to its stream (in the parts directory), then kills itself with
# SIGKILL: what was written by then stays in the trace.
import glob
import multiprocessing
import os
import signal
import time


def leaf(i):
    return i


def written():
    pattern = os.path.join(os.environ.get("VZTRACE_PARTS_DIR", "/nonexistent"),
                           f"{os.getpid()}-*.pftrace")
    return sum(os.path.getsize(path) for path in glob.glob(pattern))


def die_once_written():
    """Kills this process once its stream holds 20,000 bytes (30 s at most)."""
    deadline = time.monotonic() + 30
    while written() < 20_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGKILL)


def victim():
    for i in range(5000):
        leaf(i)
    die_once_written()


if __name__ == "__main__":
    doomed = multiprocessing.get_context("fork").Process(target=victim, name="Victim")
    doomed.start()
    doomed.join()
    print("victim exit", doomed.exitcode)
