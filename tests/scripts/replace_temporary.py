# Puts a file of its own in the place of vztrace's temporary trace beside -o (argv[1]),
# by the name vztrace gives it (.NAME.vztrace-PID.tmp), as a program renaming a file of its
# own over whatever its directory holds would.
import os
import sys


def replace():
    output = sys.argv[1]
    directory, name = os.path.split(output)
    temporary = os.path.join(directory, ".%s.vztrace-%d.tmp" % (name, os.getpid()))
    mine = os.path.join(directory, "mine")
    with open(mine, "w") as file:
        file.write("the program's own\n")
    os.rename(mine, temporary)
    return temporary


print(os.path.basename(replace()))
