# An import-heavy start-up: many standard-library modules.
import importlib
import sys

MODULES = """argparse asyncio base64 bisect calendar collections concurrent.futures
configparser contextlib csv dataclasses datetime decimal difflib email.message enum
fractions ftplib functools glob gzip hashlib heapq hmac html.parser http.client
http.server inspect ipaddress json logging logging.handlers lzma mailbox mimetypes
multiprocessing numbers operator optparse pathlib pickle pkgutil platform plistlib pprint
queue random shlex shutil smtplib socketserver sqlite3 statistics string struct
subprocess tarfile tempfile textwrap threading timeit tomllib traceback typing unittest
urllib.parse urllib.request uuid wave xml.dom.minidom xml.etree.ElementTree zipfile
zoneinfo ast codeop compileall concurrent.futures.process ctypes dbm dis doctest
email.mime.multipart email.mime.text email.policy filecmp fileinput getopt gettext
graphlib imaplib importlib.metadata importlib.resources locale modulefinder netrc pdb
pickletools poplib profile pstats py_compile pyclbr pydoc quopri rlcompleter sched
secrets selectors shelve socket ssl symtable sysconfig tabnanny tokenize trace
tracemalloc unittest.mock urllib.robotparser venv webbrowser wsgiref.simple_server
xml.sax xmlrpc.client xmlrpc.server zipapp""".split()

loaded = 0
for name in MODULES:
    try:
        importlib.import_module(name)
        loaded += 1
    except ImportError:
        pass
print("imports loaded", loaded, "modules", len(sys.modules) > loaded)
