# --ring with --log-async: the ring's cut falls inside a step of the task "long" (each of
# its steps makes 150,000 calls, far more than a 1 MiB ring holds), whose running slice was
# then not shown at all (hunt AR): the task seemed to wait while its code ran.
import asyncio


def leaf():
    pass


async def worker(calls):
    for _ in range(3):
        for _ in range(calls):
            leaf()
        await asyncio.sleep(0)


async def main():
    await asyncio.gather(asyncio.create_task(worker(150_000), name="long"),
                         asyncio.create_task(worker(10), name="short"))
    print("done")


asyncio.run(main())
