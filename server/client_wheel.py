"""Pure-Python wheels for the browser: the client (``browser_py``) and each extension.

Built in memory from the source tree, so the browser always runs the code on disk; the
bytes are deterministic (fixed timestamps), which keeps ETags stable across restarts. The
client's modules travel with their bytecode for the page's Python (``vendor.wheel_bytecode``).
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


def wheel_name(dist: str, version: str = VERSION) -> str:
    return f"{dist}-{version}-py3-none-any.whl"


def build(dist: str, files: dict[str, bytes], top_level: str, version: str = VERSION) -> bytes:
    """A wheel holding ``files`` (archive path -> bytes) plus its dist-info."""
    files = dict(files)
    info = f"{dist}-{version}.dist-info"
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: webfl\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/top_level.txt"] = f"{top_level}\n".encode()
    record = [_record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED  # a ZipInfo otherwise goes stored
            zf.writestr(entry, data)
    return buf.getvalue()


# The client's CPython twins (Pillow decoding, onnxruntime-training) never run in a browser.
NOT_IN_BROWSER = ("native",)


def _tree(package_dir: Path, prefix: str, leave_out: tuple[str, ...] = ()) -> dict[str, bytes]:
    return {f"{prefix}/{p.relative_to(package_dir).as_posix()}": p.read_bytes()
            for p in sorted(package_dir.rglob("*.py"))
            if "__pycache__" not in p.parts and p.relative_to(package_dir).parts[0] not in leave_out}


def build_wheel(package_dir: Path = PACKAGE_DIR, bytecode: bool = True) -> bytes:
    """The participant client, without its CPython-only twins; with ``bytecode``, each module's
    ``__pycache__`` entry too, so a first visit does not compile them in the page."""
    from .vendor import wheel_bytecode

    files = _tree(package_dir, "browser_py", NOT_IN_BROWSER)
    if bytecode:
        files |= wheel_bytecode(files)
    return build(DIST, files, "browser_py")


def extension_dist(name: str) -> str:
    return f"webfl_ext_{name}"


def build_extension_wheel(path: Path) -> bytes:
    """An extension: a single module ``name.py`` or a package directory ``name/``."""
    name = path.stem if path.suffix == ".py" else path.name
    files = {f"{name}.py": path.read_bytes()} if path.suffix == ".py" else _tree(path, name)
    return build(extension_dist(name), files, name)
