"""Package ``browser_py`` as a pure-Python wheel for micropip to install in the browser.

The wheel is built from the source tree in memory when the app starts, so the browser
always runs the code that is on disk; its bytes are deterministic (fixed timestamps),
which keeps the ETag stable across restarts.
"""
from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path

from .config import ROOT

DIST = "webfl_client"
VERSION = "0.1.0"
WHEEL_NAME = f"{DIST}-{VERSION}-py3-none-any.whl"
PACKAGE_DIR = ROOT / "browser_py"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(package_dir: Path = PACKAGE_DIR) -> bytes:
    files: dict[str, bytes] = {}
    for path in sorted(package_dir.rglob("*.py")):
        if "__pycache__" not in path.parts:
            files[f"browser_py/{path.relative_to(package_dir).as_posix()}"] = path.read_bytes()
    info = f"{DIST}-{VERSION}.dist-info"
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {VERSION}\n"
        "Summary: the webfl participant client (runs in Pyodide and CPython)\n").encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: webfl\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/top_level.txt"] = b"browser_py\n"
    record = [_record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()
