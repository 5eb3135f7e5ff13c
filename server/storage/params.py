"""The ``params`` table (PostgreSQL): parameter vectors in the database, content-addressed
like the embedded backend's files (:class:`server.paramstore.ParamStore`), with the same
methods, so every process reads and writes the same vectors without a shared filesystem.

A vector is written inside the transaction that records the row referring to it, under a
shared advisory lock; deleting unreferenced vectors takes that lock exclusively. So a delete
can never slip between a writer's put (a no-op for an existing vector) and its row.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Callable

import numpy as np

from .postgres import PostgresDatabase, lock_key

_KEY = lock_key("webfl:params")


class ParamsTable:
    # Callers hold this around put-and-record; the advisory lock below does the real work.
    lock = contextlib.nullcontext()

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def put(self, vector: np.ndarray) -> str:
        data = np.ascontiguousarray(vector, dtype="<f4").tobytes()
        sha = hashlib.sha256(data).hexdigest()
        conn = self.db.connect()
        with contextlib.nullcontext() if conn.in_transaction else conn.raw.transaction():
            conn.execute("SELECT pg_advisory_xact_lock_shared(?)", (_KEY,))
            conn.execute("INSERT INTO params(sha256, data) VALUES(?, ?) ON CONFLICT (sha256) DO NOTHING", (sha, data))
        return sha

    def get_bytes(self, sha: str) -> bytes:
        row = self.db.connect().raw.execute("SELECT data FROM params WHERE sha256=%s", (sha,), binary=True).fetchone()
        if row is None:
            raise FileNotFoundError(f"no parameter vector {sha}")
        return bytes(row[0])

    def get(self, sha: str) -> np.ndarray:
        return np.frombuffer(self.get_bytes(sha), dtype="<f4")

    def exists(self, sha: str) -> bool:
        return self.db.connect().execute("SELECT 1 FROM params WHERE sha256=?", (sha,)).fetchone() is not None

    def discard_unused(self, candidates: set[str], in_use: Callable[..., bool]) -> None:
        """Delete each candidate no row needs (``in_use(sha, conn)``)."""
        if not candidates:
            return
        with self.db.transaction() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(?)", (_KEY,))
            for sha in candidates:
                if not in_use(sha, tx):
                    tx.execute("DELETE FROM params WHERE sha256=?", (sha,))

    def collect(self, referenced: Callable[..., set[str]]) -> int:
        """Delete every vector no row refers to (``referenced(conn)``); return how many."""
        with self.db.transaction() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(?)", (_KEY,))
            keep = referenced(tx)
            stored = {r[0] for r in tx.execute("SELECT sha256 FROM params")}
            gone = stored - keep
            tx.executemany("DELETE FROM params WHERE sha256=?", [(s,) for s in gone])
        return len(gone)

    def shas(self) -> set[str]:
        return {r[0] for r in self.db.connect().execute("SELECT sha256 FROM params")}
