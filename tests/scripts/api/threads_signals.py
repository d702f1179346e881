# The API from another thread and from a signal handler (api_test.cpp).
import signal
import threading

import vztrace


def handler(signum, frame):
    vztrace.instant("from signal", signum=int(signum))
    vztrace.counter("signals", value=1)
    with vztrace.span("signal span"):
        pass


def work():
    vztrace.instant("from thread", thread=threading.current_thread().name)
    with vztrace.span("thread span"):
        vztrace.counter("thread counter", value=2)


signal.signal(signal.SIGUSR1, handler)
thread = threading.Thread(target=work, name="worker")
thread.start()
thread.join()
signal.raise_signal(signal.SIGUSR1)
with vztrace.span("outer span"):
    with vztrace.paused():
        signal.raise_signal(signal.SIGUSR1)
    signal.raise_signal(signal.SIGUSR1)
print("done")
