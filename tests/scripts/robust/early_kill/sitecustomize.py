# Kills the process during its start-up (before the program's first line) when asked.
import os
import signal

if os.environ.get("KILL_AT_STARTUP") == "1":
    os.kill(os.getpid(), signal.SIGTERM)
