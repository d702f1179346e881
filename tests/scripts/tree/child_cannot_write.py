# A child that can write no regular file (RLIMIT_FSIZE 0, SIGXFSZ ignored): its part cannot
# be written. Prints "child ran" then "parent ran".
import resource
import signal
import subprocess
import sys

if sys.argv[1:] == ["child"]:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
    print("child ran", flush=True)
else:
    subprocess.run([sys.executable, __file__, "child"], check=True)
    print("parent ran")
