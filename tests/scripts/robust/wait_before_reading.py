# Runs argv[1:] with stderr on a pipe it reads only once the command has ended (wait()
# first, as many a parent does), and prints the command's exit status, or "still running"
# if it has not ended after 60 s (then ends it).
import subprocess
import sys

command = subprocess.Popen(sys.argv[1:], stderr=subprocess.PIPE)
try:
    print(command.wait(timeout=60))
except subprocess.TimeoutExpired:
    print("still running")
    command.kill()
    command.wait()
