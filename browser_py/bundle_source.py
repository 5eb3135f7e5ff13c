"""Reading a model bundle's files, verified against the manifest's sha256."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .runtime import IN_PYODIDE


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


class HttpBundle(BundleSource):
    """A task's bundle served by the webfl server (``/api/tasks/<id>/bundle/<name>``)."""

    def __init__(self, base_url: str, task_id: str, token: str) -> None:
        super().__init__()
        self.base = f"{base_url.rstrip('/')}/api/tasks/{task_id}"
        self.headers = {"Authorization": f"Bearer {token}"}

    def _url(self, name: str) -> str:
        return f"{self.base}/manifest" if name == "manifest.json" else f"{self.base}/bundle/{name}"

    async def _read(self, name: str) -> bytes:
        if IN_PYODIDE:
            from pyodide.http import pyfetch

            response = await pyfetch(self._url(name), headers=self.headers)
            if not response.ok:
                raise RuntimeError(f"could not fetch {name}: HTTP {response.status}")
            return await response.bytes()
        import urllib.request

        request = urllib.request.Request(self._url(name), headers=self.headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.read()
