# The root gets SIGTERM while its child still runs (for 3 s more): it dies of it, having
# waited a second for the child, not ten.
import os
import signal
import subprocess
import sys
import time

if len(sys.argv) > 1:
    print("child started", flush=True)
    time.sleep(3)
    sys.exit(0)
child = subprocess.Popen([sys.executable, __file__, "child"], stdout=subprocess.PIPE)
child.stdout.readline()  # its program has begun: vztrace's start marker is written
print("root ready", flush=True)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(60)  # the signal ends the root before this does
