# --log-async across vztrace.pause() and resume() (hunt AR): the step that paused lost its
# end and stayed open, flagged unfinished, to the trace's end, the task's later steps
# inside it. Its steps: to the first sleep; pausing, to the second; resuming (begun while
# paused: left out), to the third; to the fourth; to the end.
import asyncio

try:
    import vztrace
except ImportError:  # under python
    vztrace = None


async def worker():
    await asyncio.sleep(0.001)
    if vztrace is not None:
        vztrace.pause()
    await asyncio.sleep(0.001)
    if vztrace is not None:
        vztrace.resume()
    await asyncio.sleep(0.001)
    await asyncio.sleep(0.001)
    print("done")


asyncio.run(worker())
