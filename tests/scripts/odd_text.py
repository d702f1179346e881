# Text that is not plain UTF-8 where a program may put it (log_test.cpp): a file name's
# undecodable byte, printed; thread and task names with a lone surrogate or a NUL; audit
# events whose name is not a str, before and after the program adds an audit hook.
import asyncio
import os
import sys
import threading

sys.stdout.reconfigure(errors="surrogateescape")
print("found", os.fsdecode(b"data_\xff.csv"), "ok")

for name in ["lone\ud800sur", "nul\x00after"]:
    thread = threading.Thread(target=lambda: None, name=name)
    thread.start()
    thread.join()


async def step():
    await asyncio.sleep(0)


async def main():
    await asyncio.gather(*(asyncio.create_task(step(), name=n) for n in ["lone\ud800", "nul\x00x"]))


asyncio.run(main())


def audit_all(events):
    for event in events:
        try:
            sys.audit(event, "x")
            print(repr(event), "nothing")
        except Exception as error:
            print(repr(event), type(error).__name__)


audit_all([123, b"bytes", "lone\ud800event", "nul\x00event"])
sys.addaudithook(lambda event, args: None)
audit_all([123, "lone\ud800event"])
