"""Reading a model bundle's files, verified against the manifest's sha256."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from .sha256 import sha256_hex


class BundleIntegrityError(RuntimeError):
    """A bundle file did not match the checksum in its manifest."""


class BundleSource:
    """Base: subclasses implement ``_read(name)``; reads are checked and cached, and a file
    asked for while it is on its way is fetched once."""

    MANIFEST = "manifest.json"

    def __init__(self) -> None:
        self._reads: dict[str, asyncio.Future] = {}  # file name -> its bytes, read or on the way
        self.manifest: dict | None = None

    async def _read(self, name: str) -> bytes:
        raise NotImplementedError

    async def load_manifest(self) -> dict:
        if self.manifest is None:
            self.manifest = json.loads(await self._once(self.MANIFEST))
        return self.manifest

    async def read(self, name: str) -> bytes:
        return await self._once(name)

    def prefetch(self, names: list[str]) -> None:
        """Start reading these files now (the page's start fetches them side by side); a
        failure is raised to whoever reads the file. A name the manifest does not list is
        refused at once."""
        for name in names:
            if self.manifest is not None:
                self._entry(name)
            self._started(name).add_done_callback(lambda f: f.cancelled() or f.exception())  # no warning

    def _started(self, name: str) -> asyncio.Future:
        if name not in self._reads:
            fetch = self._read(name) if name == self.MANIFEST else self._checked(name)
            self._reads[name] = asyncio.ensure_future(fetch)
        return self._reads[name]

    async def _once(self, name: str) -> bytes:
        reading = self._started(name)
        try:
            return await asyncio.shield(reading)  # one caller giving up stops nobody else's read
        except Exception:
            if self._reads.get(name) is reading and reading.done():
                del self._reads[name]  # a failed read is tried again next time
            raise

    def _entry(self, name: str) -> dict:
        try:
            return self.manifest["files"][name]
        except KeyError:
            raise KeyError(f"{name} is not a file of this bundle") from None

    async def _checked(self, name: str) -> bytes:
        await self.load_manifest()
        expected = self._entry(name)["sha256"]  # before fetching: an unknown name costs no request
        data = await self._read(name)
        if await sha256_hex(data) != expected:  # the features model (8.9 MB) is hashed off the main thread
            raise BundleIntegrityError(f"bundle file {name} is corrupt (sha256 mismatch)")
        return data


class DirectoryBundle(BundleSource):
    """A bundle directory on disk (CPython)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)

    async def _read(self, name: str) -> bytes:
        return (self.path / name).read_bytes()
