"""Python compiled to bytecode for the page's Pyodide (server/pyodide_bytecode.mjs, run by Node
with the vendored Pyodide): the standard library at setup, the client's wheel when it is
built. What it makes of a small library and a small wheel, that setup leaves both in place
once, and that without Node everything stays source. The page loading them is checked in
tests/test_browser_runtime.py."""
from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
import zipfile
from pathlib import Path

from server import vendor

SCRIPT = Path(vendor.__file__).with_name("pyodide_bytecode.mjs")


def _pyc_beside(module: str) -> str:
    """Where Pyodide's Python (3.14) looks for a wheel module's bytecode."""
    folder, name = module.rsplit("/", 1)
    return f"{folder}/__pycache__/{name[:-3]}.cpython-314.pyc"


def _compile(tmp_path: Path, members: dict[str, bytes], *mode: str) -> zipfile.ZipFile:
    source, out = tmp_path / "in.zip", tmp_path / "out.zip"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    proc = subprocess.run([shutil.which("node") or "node", str(SCRIPT), str(vendor.STDLIB.parent), str(source),
                           str(out), *mode], capture_output=True, text=True, timeout=300)
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


def test_a_wheel_keeps_its_sources_and_gains_bytecode_where_site_packages_looks(tmp_path):
    good = b"def answer():\n    return 42\n"
    out = _compile(tmp_path, {"pkg/__init__.py": b"", "pkg/sub/good.py": good, "pkg/broken.py": b"def (:\n",
                              "pkg-0.1.dist-info/RECORD": b""}, "--wheel")
    names = set(out.namelist())
    assert names == {"pkg/__init__.py", "pkg/__pycache__/__init__.cpython-314.pyc", "pkg/sub/good.py",
                     "pkg/sub/__pycache__/good.cpython-314.pyc", "pkg/broken.py", "pkg-0.1.dist-info/RECORD"}
    assert out.read("pkg/sub/good.py") == good  # tracebacks still show the lines
    pyc = out.read("pkg/sub/__pycache__/good.cpython-314.pyc")
    # hash-based and unchecked, like the library's (the hash is keyed by Pyodide's Python)
    assert int.from_bytes(pyc[4:8], "little") == 0b01 and len(pyc) > 16


def test_the_client_wheel_carries_bytecode_compiled_once(tmp_path, monkeypatch):
    from server.client_wheel import build_wheel

    monkeypatch.setattr(vendor, "WHEEL_BYTECODE_DIR", tmp_path / "kept")
    with zipfile.ZipFile(io.BytesIO(build_wheel())) as zf:
        names = zf.namelist()
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
    modules = [n for n in names if n.endswith(".py")]
    assert "browser_py/participant.py" in modules
    assert {n for n in names if n.endswith(".pyc")} == {_pyc_beside(n) for n in modules}
    kept = list((tmp_path / "kept").iterdir())
    assert len(kept) == 1
    before = kept[0].stat().st_mtime_ns
    assert build_wheel() == build_wheel()  # deterministic bytes: a stable ETag
    assert kept[0].stat().st_mtime_ns == before and len(list((tmp_path / "kept").iterdir())) == 1


def test_without_node_the_client_wheel_goes_as_source_and_says_so(tmp_path, monkeypatch, capsys):
    from server.client_wheel import build_wheel

    monkeypatch.setattr(vendor, "WHEEL_BYTECODE_DIR", tmp_path / "kept")
    monkeypatch.setattr(vendor.shutil, "which", lambda name: None)
    with zipfile.ZipFile(io.BytesIO(build_wheel())) as zf:
        names = zf.namelist()
    assert "browser_py/participant.py" in names and not any(n.endswith(".pyc") for n in names)
    assert "no Node.js" in capsys.readouterr().err


def test_setup_left_the_vendored_library_compiled_and_does_not_redo_it():
    with zipfile.ZipFile(vendor.STDLIB) as zf:
        names = zf.namelist()
    compiled = [n for n in names if n.endswith(".pyc")]
    assert len(compiled) > 500 and "asyncio/__init__.pyc" in names and "asyncio/__init__.py" not in names
    before = vendor.STDLIB.stat().st_mtime_ns
    assert vendor.ensure_stdlib_bytecode(quiet=True)  # the stamp matches: nothing is rewritten
    assert vendor.STDLIB.stat().st_mtime_ns == before


def test_setup_left_the_vendored_wheels_with_bytecode_and_does_not_redo_it():
    for name in vendor.BROWSER_WHEELS:
        path = vendor.VENDOR_DIR / name
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        modules = [n for n in names if n.endswith(".py")]
        assert modules and all(_pyc_beside(n) in names for n in modules)
        before = path.stat().st_mtime_ns
        assert vendor.ensure_wheels_bytecode(quiet=True)
        assert path.stat().st_mtime_ns == before


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
