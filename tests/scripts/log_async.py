# --log-async: two tasks that each wait twice.
import asyncio


async def worker(delay):
    await asyncio.sleep(delay)
    await asyncio.sleep(delay)
    return delay


async def main():
    first = asyncio.create_task(worker(0.01), name="first")
    second = asyncio.create_task(worker(0.02), name="second")
    print(await first, await second)


asyncio.run(main())
