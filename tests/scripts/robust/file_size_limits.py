# A file-size limit (RLIMIT_FSIZE) met by vztrace's own writes where SIGXFSZ is SIG_DFL:
# subprocess resets it in a child before it execs (the child's image writes its part then,
# after the preexec_fn below lowered the limit to 0), and the program sets it itself before
# a fork whose child the root's main thread writes for. Python runs it all with status 0.
import os
import resource
import signal
import subprocess
import sys

INFINITY = resource.RLIM_INFINITY


def no_file_growth():
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, INFINITY))


def work(n):
    return sum(range(n))


done = subprocess.run(["/bin/echo", "child ran"], preexec_fn=no_file_growth)
print("child status", done.returncode, flush=True)
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
resource.setrlimit(resource.RLIMIT_FSIZE, (0, INFINITY))
pid = os.fork()
if pid == 0:
    for i in range(20000):
        work(i % 10)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("forked child status", os.waitstatus_to_exitcode(status))
sys.exit(0)
