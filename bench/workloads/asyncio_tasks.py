# asyncio with many tasks passing control back and forth.
import asyncio

from _scale import scaled


async def worker(index, queue, results):
    total = 0
    while True:
        item = await queue.get()
        if item is None:
            break
        total += await transform(item + index)
        queue.task_done()
    results.append(total)


async def transform(x):
    await asyncio.sleep(0)
    return x % 7


async def main():
    queue = asyncio.Queue()
    results = []
    tasks = [asyncio.create_task(worker(i, queue, results)) for i in range(100)]
    for item in range(scaled(120000)):
        await queue.put(item)
    for _ in tasks:
        await queue.put(None)
    await asyncio.gather(*tasks)
    return sum(results)


print("asyncio checksum", asyncio.run(main()))
