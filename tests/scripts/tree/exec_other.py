# A root that ends by exec'ing a program other than vztrace: "shell" runs /bin/sh after a
# traced child has run; "broken" execs an ELF header with no program after it, which the
# kernel refuses, and goes on;
# "shebang" runs a script whose '#!/usr/bin/env vztrace' makes vztrace its next image;
# "wrapper" runs /bin/sh, which execs vztrace.
import os
import subprocess
import sys


def before_exec():
    return 1


def after_failed_exec():
    return 2


mode = sys.argv[1]
if mode == "after":
    def after_exec():
        return 3
    after_exec()
    print("after exec")
    sys.exit(0)
before_exec()
if mode == "wrapper":
    # A shell that execs vztrace in its turn: a root of its own, not the next image.
    sys.stdout.flush()
    os.execv("/bin/sh", ["sh", "-c", 'exec "$0" "$1" after', sys.executable, __file__])
if mode == "shell":
    subprocess.run([sys.executable, "-c", "def child_call(): pass\nchild_call()"], check=True)
    sys.stdout.flush()
    os.execv("/bin/sh", ["sh", "-c", "echo after exec"])
target = os.path.join(sys.argv[2], "next")
with open(target, "wb") as file:
    if mode == "broken":
        with open("/bin/true", "rb") as program:
            file.write(program.read(64))
    else:
        file.write(b"#!/usr/bin/env vztrace\nimport runpy, sys\n"
                   b"runpy.run_path(%r, run_name='__main__')\n" % __file__)
os.chmod(target, 0o755)
sys.stdout.flush()
try:
    os.execv(target, [target, "after"])
except OSError as error:
    print(type(error).__name__)
after_failed_exec()
