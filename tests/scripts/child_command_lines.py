# sys.executable children whose command line python reads its own way: the options python
# and vztrace both have, no program at all (python reads it from standard input), -R.
import subprocess
import sys


def run(args, stdin=""):
    done = subprocess.run([sys.executable, *args], input=stdin, capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


print("--version:", run(["--version"]))
print("-V:", run(["-V"]))
code, out, err = run(["-h"])
print("-h:", code, out.startswith("usage: "), "-c cmd" in out, repr(err))
code, out, err = run(["--help"])
print("--help:", code, out.startswith("usage: "), "-c cmd" in out, repr(err))
print("stdin:", run([], "import sys\nprint('from stdin', sys.argv)\n"))
print("-u, stdin:", run(["-u"], "print('unbuffered')\n"))
print("-R:", run(["-R", "-c", "import sys; print(sys.flags.hash_randomization)"]))
