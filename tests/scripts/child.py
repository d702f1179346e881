# Starts sys.executable as a child, as subprocess and multiprocessing spawn do.
import subprocess
import sys

result = subprocess.run(
    [sys.executable, "-c", "import sys; print('child', sys.argv[1:], sys.flags.optimize)", "a1"],
    capture_output=True, text=True, check=True)
print("child said:", result.stdout.strip())
result = subprocess.run([sys.executable, "-O", "-c", "import sys; print(sys.flags.optimize)"],
                        capture_output=True, text=True, check=True)
print("child -O said:", result.stdout.strip())
