# subprocess's child runs a preexec_fn that raises: the child leaves by _exit(255) from C,
# and the program sees a SubprocessError.
import subprocess


def helper():
    return 1


def prepare():
    helper()
    raise ValueError("no")


try:
    subprocess.run(["true"], preexec_fn=prepare)
except subprocess.SubprocessError as error:
    print("refused:", error)
