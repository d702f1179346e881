# A task cancelled while it awaits a coroutine that handles the cancellation and returns:
# the awaiting coroutine resumes and goes on.
import asyncio


def after_inner():
    return 1


def cleanup():
    return 2


async def inner():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        cleanup()
    return 5


async def outer():
    r = await inner()
    after_inner()
    return r


async def main():
    task = asyncio.create_task(outer())
    await asyncio.sleep(0)
    task.cancel()
    print(await task)


asyncio.run(main())
