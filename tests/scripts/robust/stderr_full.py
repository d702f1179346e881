# Fills its stderr, a pipe of 64 KiB that nobody reads yet, and ends: at once under python.
import sys

sys.stderr.write("e" * 65536)
sys.stderr.flush()
