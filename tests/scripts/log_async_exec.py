# A task in each of two images of one process (it execs itself): each task its own track.
import asyncio
import os
import sys


async def first_image():
    await asyncio.sleep(0)


async def second_image():
    await asyncio.sleep(0)


if sys.argv[1:] == ["again"]:
    asyncio.run(second_image())
else:
    asyncio.run(first_image())
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, __file__, "again"])
