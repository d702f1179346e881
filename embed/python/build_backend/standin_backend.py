"""A PEP 517 backend for the stand-in, so `pip install embed/python` needs nothing from an
index (setuptools and wheel are not always there to download). It builds one wheel: the
module vztrace.py and its metadata, read from pyproject.toml's [project] table."""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile

try:
    import tomllib
except ImportError:  # Python < 3.11: the few fields needed, read by hand
    tomllib = None

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MODULE = "vztrace.py"


def _project() -> dict:
    with open(os.path.join(_HERE, "pyproject.toml"), "rb") as file:
        text = file.read()
    if tomllib is not None:
        return tomllib.loads(text.decode())["project"]
    fields = {}
    for line in text.decode().splitlines():
        key, _, value = line.partition("=")
        if value.strip().startswith('"'):
            fields.setdefault(key.strip(), value.strip().strip('"'))
    return fields


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _wheel(wheel_directory: str, files: dict) -> str:
    project = _project()
    name, version = project["name"], project["version"]
    dist_info = f"{name}-{version}.dist-info"
    files = dict(files)
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        f"Summary: {project.get('description', '')}\n"
        f"Requires-Python: {project.get('requires-python', '>=3.8')}\n"
    ).encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: standin_backend\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    record = [_record_line(path, data) for path, data in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel_name = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w",
                         zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return wheel_name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open(os.path.join(_HERE, _MODULE), "rb") as file:
        return _wheel(wheel_directory, {_MODULE: file.read()})


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {"vztrace_standin.pth": (_HERE + "\n").encode()})
