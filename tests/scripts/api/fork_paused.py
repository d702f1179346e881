# A forked child that records no call: it starts paused, as its parent was.
import os

import vztrace

vztrace.pause()
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
vztrace.resume()
print("done")
