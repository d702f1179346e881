# asyncio imported while an import finder of the program's starts a thread and waits for
# it (a thread whose audit events come while asyncio's module lock is held). Under
# --log-async, vztrace looked asyncio up in a way that took that lock: the program hung.
import sys
import threading

started = []


class Finder:
    def find_spec(self, name, path, target=None):
        if name.startswith("asyncio.") and not started:
            started.append(name)
            thread = threading.Thread(target=lambda: open("/dev/null").close())
            thread.start()
            thread.join()
        return None


sys.meta_path.insert(0, Finder())
import asyncio  # noqa: E402

print("imported", asyncio.__name__)
