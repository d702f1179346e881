# `-m killed_in_init.main`: the package's own code runs, then SIGTERM ends the process
# before runpy reaches the module. What ran is kept.
import os
import signal


def package_setup():
    os.kill(os.getpid(), signal.SIGTERM)


package_setup()
