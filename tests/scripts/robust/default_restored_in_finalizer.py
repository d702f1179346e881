# A library's object sets a SIGALRM handler and, in its __del__ at module teardown, puts
# back the SIG_DFL it found, then arms a 50 ms timer: the SIGALRM comes while vztrace writes
# the trace of 300,000 calls as JSON (a finalizer's alarm, as a watchdog's).
import signal


def work(k):
    return k


class Library:
    def __init__(self):
        self.saved = signal.signal(signal.SIGALRM, lambda signum, frame: None)

    def __del__(self, _signal=signal.signal, _setitimer=signal.setitimer):
        _signal(signal.SIGALRM, self.saved)
        _setitimer(signal.ITIMER_REAL, 0.05)


library = Library()
for i in range(300000):
    work(i)
print("done")
