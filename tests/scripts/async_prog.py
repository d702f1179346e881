import asyncio


async def step(i):
    await asyncio.sleep(0)
    return i


async def chain(n):
    total = 0
    for i in range(n):
        total += await step(i)
        await asyncio.sleep(0)
    return total


async def main():
    results = await asyncio.gather(*(chain(5) for _ in range(3)))
    print(results)


asyncio.run(main())
