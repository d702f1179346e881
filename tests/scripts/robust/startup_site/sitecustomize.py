# Start-up code that sets signals itself (as APM agents and site policies do): a handler
# for SIGTERM, SIGHUP ignored.
import signal
import sys


def graceful(signum, frame):
    print("graceful shutdown", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, graceful)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
