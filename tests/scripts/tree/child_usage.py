# Children given options python does not know, or one without its value: python's own
# usage text and status come out, as the program would see them under python.
import subprocess
import sys

for options in (["-Z", "-c", "pass"], ["--foo", "-c", "pass"], ["-J", "-c", "pass"],
                ["-u", "--quiet", "-c", "pass"], ["-X"], ["-W"]):
    done = subprocess.run([sys.executable, *options], capture_output=True, text=True)
    print(options, done.returncode, done.stdout.replace(sys.executable, "PYTHON"),
          done.stderr.replace(sys.executable, "PYTHON"), sep="\n")
