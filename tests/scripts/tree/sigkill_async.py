# A child process runs asyncio tasks (their steps on tracks of their own under
# --log-async), waits until vztrace's writer has written some of its records to its stream
# (in the parts directory), then kills itself with SIGKILL: the root reads that stream and
# counts its calls, which a task's steps are not.
import asyncio
import multiprocessing

from sigkill_after_work import die_once_written


async def step(n):
    for _ in range(n):
        await asyncio.sleep(0)


async def main():
    await asyncio.gather(*(step(500) for _ in range(4)))


def victim():
    asyncio.run(main())
    die_once_written()


if __name__ == "__main__":
    doomed = multiprocessing.get_context("fork").Process(target=victim, name="Victim")
    doomed.start()
    doomed.join()
    print("victim exit", doomed.exitcode)
