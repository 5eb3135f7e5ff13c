"""Reading a model bundle's files, verified against the manifest's sha256."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path



class BundleIntegrityError(RuntimeError):
    """A bundle file did not match the checksum in its manifest."""


class BundleSource:
    """Base: subclasses implement ``_read(name)``; reads are checked and cached."""

    def __init__(self) -> None:
        self._cache: dict[str, bytes] = {}
        self.manifest: dict | None = None

    async def _read(self, name: str) -> bytes:
        raise NotImplementedError

    async def load_manifest(self) -> dict:
        if self.manifest is None:
            self.manifest = json.loads(await self._read("manifest.json"))
        return self.manifest

    async def read(self, name: str) -> bytes:
        if name not in self._cache:
            manifest = await self.load_manifest()
            data = await self._read(name)
            expected = manifest["files"][name]["sha256"]
            if hashlib.sha256(data).hexdigest() != expected:
                raise BundleIntegrityError(f"bundle file {name} is corrupt (sha256 mismatch)")
            self._cache[name] = data
        return self._cache[name]


class DirectoryBundle(BundleSource):
    """A bundle directory on disk (CPython)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)

    async def _read(self, name: str) -> bytes:
        return (self.path / name).read_bytes()
