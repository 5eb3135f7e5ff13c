"""Content-addressed parameter vectors on disk, written atomically and durably.

A vector is stored as little-endian float32 bytes at ``<root>/<sha[:2]>/<sha>.f32``.
Writes go to a temp file that is fsynced and renamed into place (and the directory
fsynced), so a crash leaves either the whole file or none of it.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Callable

import numpy as np


class ParamStore:
    """Files are shared by content, so whoever writes a vector and records a reference to
    it, and whoever deletes unreferenced vectors, must hold :attr:`lock` across both steps:
    otherwise a delete can slip between another writer's put (a no-op for an existing file)
    and its database row."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.RLock()
        root.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        return self.root / sha[:2] / f"{sha}.f32"

    def put(self, vector: np.ndarray, sha: str | None = None) -> str:
        """Store ``vector`` (``sha``: its content address, when the caller just computed it)."""
        if sha is not None and self.path(sha).exists():
            return sha
        data = np.ascontiguousarray(vector, dtype="<f4").tobytes()
        sha = hashlib.sha256(data).hexdigest()
        dest = self.path(sha)
        if dest.exists():
            return sha
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return sha

    def get_bytes(self, sha: str) -> bytes:
        return self.path(sha).read_bytes()

    def get(self, sha: str) -> np.ndarray:
        return np.frombuffer(self.get_bytes(sha), dtype="<f4")

    def exists(self, sha: str) -> bool:
        return self.path(sha).exists()

    def shas(self) -> set[str]:
        return {p.stem for p in self.root.glob("*/*.f32")}

    def discard_unused(self, candidates: set[str], in_use: Callable[..., bool]) -> None:
        """Delete each candidate no row needs (``in_use(sha)``)."""
        with self.lock:
            for sha in candidates:
                if not in_use(sha):
                    self.path(sha).unlink(missing_ok=True)

    def collect(self, referenced: Callable[..., set[str]]) -> int:
        """Delete every vector no row refers to (``referenced()``) and every unfinished temp
        file; return how many."""
        removed = 0
        with self.lock:
            keep = referenced()
            for path in list(self.root.glob("*/*")):
                if path.suffix == ".part" or (path.suffix == ".f32" and path.stem not in keep):
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed
