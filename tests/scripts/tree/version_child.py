# Children that python ends while it reads its configuration, before any program: tools
# often ask sys.executable for its version.
import subprocess
import sys

for args in (["-V"], ["--help-env"], ["-X", "int_max_str_digits=bad", "-c", "pass"]):
    done = subprocess.run([sys.executable, *args], capture_output=True)
    print(args[0], done.returncode, done.stdout.splitlines()[:1])
