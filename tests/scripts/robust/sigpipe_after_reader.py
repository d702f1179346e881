# Sets SIGPIPE to SIG_DFL (as command-line tools meant for `| head` do), writes one line,
# and ends once the reader of its stdout has gone: exit status 0 under python.
import select
import signal
import sys

signal.signal(signal.SIGPIPE, signal.SIG_DFL)
print("line 1", flush=True)
watch = select.poll()
watch.register(sys.stdout.fileno(), 0)  # POLLERR alone: the pipe's reader has closed it
watch.poll()
