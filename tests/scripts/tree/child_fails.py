import subprocess
import sys

code = "def failing():\n    raise SystemExit(5)\nfailing()"
print("child status", subprocess.run([sys.executable, "-c", code]).returncode)
