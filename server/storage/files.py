"""The ``files`` table (PostgreSQL): bundle files and validation sets, stored once so every
process serves the same bytes, and unpacked on demand into a local, content-addressed cache.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .postgres import PostgresDatabase


class FilesTable:
    def __init__(self, db: PostgresDatabase, cache: Path) -> None:
        self.db = db
        self.cache = cache

    def put(self, name: str, data: bytes, conn=None) -> str:
        sha = hashlib.sha256(data).hexdigest()
        (conn or self.db.connect()).execute(
            "INSERT INTO files(name, sha256, data) VALUES(?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET sha256=excluded.sha256, data=excluded.data", (name, sha, data))
        return sha

    def put_dir(self, prefix: str, directory: Path) -> None:
        """Every file of ``directory`` as ``<prefix>/<file name>``, in one transaction."""
        with self.db.transaction() as tx:
            for path in sorted(directory.iterdir()):
                if path.is_file():
                    self.put(f"{prefix}/{path.name}", path.read_bytes(), tx)

    def sha(self, name: str) -> str | None:
        row = self.db.connect().execute("SELECT sha256 FROM files WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    def get(self, name: str) -> bytes | None:
        row = self.db.connect().raw.execute("SELECT data FROM files WHERE name=%s", (name,), binary=True).fetchone()
        return None if row is None else bytes(row[0])

    def names(self, prefix: str) -> list[str]:
        return [r[0] for r in self.db.connect().execute(
            "SELECT name FROM files WHERE name LIKE ? ORDER BY name", (prefix.replace("%", "") + "%",))]

    def local_dir(self, prefix: str) -> Path | None:
        """``prefix``'s files unpacked under the cache (once; written whole, then renamed)."""
        target = self.cache / prefix
        if target.is_dir():
            return target
        names = self.names(prefix + "/")
        if not names:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
        try:
            for name in names:
                (staging / name.rsplit("/", 1)[1]).write_bytes(self.get(name))
            try:
                os.rename(staging, target)
            except OSError:  # another thread or process unpacked it first
                pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def local_file(self, name: str, suffix: str = "") -> Path | None:
        """One file unpacked under the cache, named by its content hash."""
        sha = self.sha(name)
        if sha is None:
            return None
        target = self.cache / "by-sha" / f"{sha}{suffix}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".unpack-")
            with os.fdopen(fd, "wb") as f:
                f.write(self.get(name))
            os.replace(tmp, target)
        return target
