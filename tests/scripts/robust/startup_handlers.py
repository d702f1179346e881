# Run with robust/startup_site on PYTHONPATH: the signals its sitecustomize set stay as it
# set them. SIGHUP is ignored; SIGTERM runs its handler, which exits with 0.
import os
import signal

print("SIGTERM:", signal.getsignal(signal.SIGTERM).__name__)
print("SIGHUP ignored:", signal.getsignal(signal.SIGHUP) == signal.SIG_IGN)
os.kill(os.getpid(), signal.SIGHUP)
print("survived SIGHUP", flush=True)
os.kill(os.getpid(), signal.SIGTERM)
print("not reached")
