"""The ``versions`` table: the history of each task's global model."""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..db import Database


@dataclass
class Version:
    version: int
    params_sha256: str
    bundle_sha256: str
    created: float
    kind: str
    params_kept: bool


class VersionsTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _version(row) -> Version:
        return Version(row["version"], row["params_sha256"], row["bundle_sha256"], row["created"],
                       row["kind"], bool(row["params_kept"]))

    def current(self, task_id: str, conn=None) -> Version | None:
        row = (conn or self.db.connect()).execute(
            "SELECT * FROM versions WHERE task_id=? ORDER BY version DESC LIMIT 1", (task_id,)).fetchone()
        return self._version(row) if row else None

    def get(self, task_id: str, version: int, conn=None) -> Version | None:
        row = (conn or self.db.connect()).execute(
            "SELECT * FROM versions WHERE task_id=? AND version=?", (task_id, version)).fetchone()
        return self._version(row) if row else None

    def insert(self, task_id: str, version: int | None, params_sha: str, bundle_sha: str, kind: str, conn) -> int:
        """A new version (``version`` None: the next number); returns its number."""
        if version is None:
            row = conn.execute("SELECT MAX(version) AS v FROM versions WHERE task_id=?", (task_id,)).fetchone()
            version = 0 if row["v"] is None else row["v"] + 1
        conn.execute("INSERT INTO versions(task_id, version, params_sha256, bundle_sha256, created, kind) "
                     "VALUES(?,?,?,?,?,?)", (task_id, version, params_sha, bundle_sha, time.time(), kind))
        return version

    def since(self, task_id: str, since: int) -> list:
        return self.db.connect().execute(
            "SELECT version, created, kind FROM versions WHERE task_id=? AND version>? ORDER BY version",
            (task_id, since)).fetchall()

    def drop_params_up_to(self, task_id: str, cutoff: int) -> set[str]:
        """Mark versions up to ``cutoff`` as no longer keeping their parameters; their files."""
        conn = self.db.connect()
        old = conn.execute("SELECT version, params_sha256 FROM versions WHERE task_id=? AND version<=? "
                           "AND params_kept=1", (task_id, cutoff)).fetchall()
        conn.executemany("UPDATE versions SET params_kept=0 WHERE task_id=? AND version=?",
                         [(task_id, r["version"]) for r in old])
        return {r["params_sha256"] for r in old}
