# A child process runs asyncio tasks (their steps on tracks of their own under
# --log-async), waits until vztrace's writer has written some of its records to its stream
# (in the parts directory), then kills itself with SIGKILL: the root reads that stream and
# counts its calls, which a task's steps are not.
import asyncio
import glob
import multiprocessing
import os
import signal
import time


async def step(n):
    for _ in range(n):
        await asyncio.sleep(0)


async def main():
    await asyncio.gather(*(step(500) for _ in range(4)))


def written():
    pattern = os.path.join(os.environ.get("VZTRACE_PARTS_DIR", "/nonexistent"),
                           f"{os.getpid()}-*.pftrace")
    return sum(os.path.getsize(path) for path in glob.glob(pattern))


def victim():
    asyncio.run(main())
    deadline = time.monotonic() + 30
    while written() < 20_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    doomed = multiprocessing.get_context("fork").Process(target=victim, name="Victim")
    doomed.start()
    doomed.join()
    print("victim exit", doomed.exitcode)
