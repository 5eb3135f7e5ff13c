"""The ``params`` table (PostgreSQL): parameter vectors in the database, content-addressed
like the embedded backend's files (:class:`server.paramstore.ParamStore`), with the same
methods, so every process reads and writes the same vectors without a shared filesystem.

A vector is written inside the transaction that records the row referring to it, under a
shared advisory lock; deleting unreferenced vectors takes that lock exclusively. So a delete
can never slip between a writer's put (a no-op for an existing vector) and its row.

Vectors never change (their name is their hash), so each process keeps the recently used
ones in memory: merging an update reads its own vector and its base version's, which this
process usually has just written or read.
"""
from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import OrderedDict
from typing import Callable

import numpy as np

from .postgres import PostgresDatabase, lock_key

_KEY = lock_key("webfl:params")
CACHE_BYTES = 256 * 1024 * 1024


class ParamsTable:
    # Callers hold this around put-and-record; the advisory lock below does the real work.
    lock = contextlib.nullcontext()

    def __init__(self, db: PostgresDatabase, cache_bytes: int = CACHE_BYTES) -> None:
        self.db = db
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached = 0
        self._cache_limit = cache_bytes
        self._cache_lock = threading.Lock()

    def _remember(self, sha: str, data: bytes) -> None:
        if len(data) > self._cache_limit // 4:
            return
        with self._cache_lock:
            if sha in self._cache:
                self._cache.move_to_end(sha)
                return
            self._cache[sha] = data
            self._cached += len(data)
            while self._cached > self._cache_limit:
                self._cached -= len(self._cache.popitem(last=False)[1])

    def _recall(self, sha: str) -> bytes | None:
        with self._cache_lock:
            data = self._cache.get(sha)
            if data is not None:
                self._cache.move_to_end(sha)
            return data

    def _forget(self, sha: str) -> None:
        with self._cache_lock:
            data = self._cache.pop(sha, None)
            if data is not None:
                self._cached -= len(data)

    def put(self, vector: np.ndarray, sha: str | None = None) -> str:
        """Store ``vector`` (``sha``: its content address, when the caller just computed it);
        a vector already stored costs one small query, not its bytes."""
        data = np.ascontiguousarray(vector, dtype="<f4").tobytes()
        sha = sha or hashlib.sha256(data).hexdigest()
        conn = self.db.connect()
        with contextlib.nullcontext() if conn.in_transaction else conn.raw.transaction():
            conn.execute("SELECT pg_advisory_xact_lock_shared(?)", (_KEY,))
            if conn.execute("SELECT 1 FROM params WHERE sha256=?", (sha,)).fetchone() is None:
                conn.execute("INSERT INTO params(sha256, data) VALUES(?, ?) ON CONFLICT (sha256) DO NOTHING",
                             (sha, data))
        self._remember(sha, data)
        return sha

    def get_bytes(self, sha: str) -> bytes:
        data = self._recall(sha)
        if data is not None:
            return data
        row = self.db.connect().raw.execute("SELECT data FROM params WHERE sha256=%s", (sha,), binary=True).fetchone()
        if row is None:
            raise FileNotFoundError(f"no parameter vector {sha}")
        data = bytes(row[0])
        self._remember(sha, data)
        return data

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
                    self._forget(sha)

    def collect(self, referenced: Callable[..., set[str]]) -> int:
        """Delete every vector no row refers to (``referenced(conn)``); return how many."""
        with self.db.transaction() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(?)", (_KEY,))
            keep = referenced(tx)
            stored = {r[0] for r in tx.execute("SELECT sha256 FROM params")}
            gone = stored - keep
            tx.executemany("DELETE FROM params WHERE sha256=?", [(s,) for s in gone])
        for sha in gone:
            self._forget(sha)
        return len(gone)

    def shas(self) -> set[str]:
        return {r[0] for r in self.db.connect().execute("SELECT sha256 FROM params")}
