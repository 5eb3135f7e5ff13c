"""Pyodide's standard library compiled to bytecode at setup (server/pyodide_bytecode.mjs, run by
Node with the vendored Pyodide): what it makes of a small library, and that setup leaves it
in place once. The page loading it is checked in tests/test_browser_runtime.py."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import zipfile
from pathlib import Path

from server import vendor

SCRIPT = Path(vendor.__file__).with_name("pyodide_bytecode.mjs")


def _compile(tmp_path: Path, members: dict[str, bytes]) -> zipfile.ZipFile:
    source, out = tmp_path / "in.zip", tmp_path / "out.zip"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    proc = subprocess.run([shutil.which("node") or "node", str(SCRIPT), str(vendor.STDLIB.parent), str(source),
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return zipfile.ZipFile(out)


def test_modules_become_unchecked_bytecode_and_the_rest_stays(tmp_path):
    good = b"def answer():\n    return 42\n"
    out = _compile(tmp_path, {"pkg/__init__.py": b"", "pkg/good.py": good,
                              "broken.py": b"def (:\n", "pkg/data.txt": b"not python"})
    names = set(out.namelist())
    assert names == {"pkg/__init__.pyc", "pkg/good.pyc", "broken.py", "pkg/data.txt"}
    assert out.read("broken.py") == b"def (:\n" and out.read("pkg/data.txt") == b"not python"
    pyc = out.read("pkg/good.pyc")
    # header: magic (Pyodide's Python, not this one), flags 0b01 = hash-based and unchecked:
    # the page never looks for the source
    assert pyc[:4] != importlib.util.MAGIC_NUMBER and pyc[2:4] == b"\r\n"
    assert int.from_bytes(pyc[4:8], "little") == 0b01 and len(pyc) > 16


def test_setup_left_the_vendored_library_compiled_and_does_not_redo_it():
    with zipfile.ZipFile(vendor.STDLIB) as zf:
        names = zf.namelist()
    compiled = [n for n in names if n.endswith(".pyc")]
    assert len(compiled) > 500 and "asyncio/__init__.pyc" in names and "asyncio/__init__.py" not in names
    before = vendor.STDLIB.stat().st_mtime_ns
    assert vendor.ensure_stdlib_bytecode(quiet=True)  # the stamp matches: nothing is rewritten
    assert vendor.STDLIB.stat().st_mtime_ns == before


def test_without_node_the_library_stays_source_and_setup_says_so(tmp_path, monkeypatch, capsys):
    library = tmp_path / "python_stdlib.zip"
    with zipfile.ZipFile(library, "w") as zf:
        zf.writestr("os.py", b"x = 1\n")
    before = library.read_bytes()
    monkeypatch.setattr(vendor, "STDLIB", library)
    monkeypatch.setattr(vendor, "STDLIB_STAMP", tmp_path / "stamp")
    monkeypatch.setattr(vendor.shutil, "which", lambda name: None)
    assert vendor.ensure_stdlib_bytecode(quiet=True) is False
    assert library.read_bytes() == before and not (tmp_path / "stamp").exists()
    assert "no Node.js" in capsys.readouterr().err
