"""Receiving client updates and folding them into the global model.

The path of one update:

1. validate outside any lock: length, dtype, finite values, norm bound, versions;
2. write its vector durably (content-addressed file, fsync) and insert its row as
   ``pending`` in a committed transaction: from here on it is acknowledged work;
3. under the task's lock, apply pending updates in arrival order (row id) with the
   task's strategy; each new global version is written durably and committed together
   with the rows it consumed.

A crash between 2 and 3 leaves pending rows that :meth:`UpdateService.recover` applies at
the next start, so an acknowledged update is applied exactly once.
"""
from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import APIError, Conflict
from .paramstore import ParamStore
from .strategies import ClientUpdate, Strategy, make_strategy
from .strategies.fedasync import FedAsync
from .tasks import Client, Task, TaskStore


class UpdateRejected(APIError):
    status = 400


class PayloadTooLarge(APIError):
    status = 413


@dataclass(frozen=True)
class UpdateMeta:
    base_version: int
    num_samples: int
    idempotency_key: str
    metrics: dict


def parse_meta(headers) -> UpdateMeta:
    """Read the update's metadata from its headers, with readable errors."""
    def integer(name: str, lo: int) -> int:
        raw = headers.get(name)
        if raw is None:
            raise UpdateRejected(f"missing header {name}")
        try:
            value = int(raw)
        except ValueError:
            raise UpdateRejected(f"header {name} must be a whole number, got {raw!r}") from None
        if value < lo:
            raise UpdateRejected(f"header {name} must be at least {lo}, got {value}")
        return value

    key = headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > 128:
        raise UpdateRejected("header Idempotency-Key must be 1 to 128 characters",
                             "send a fresh random key per update and the same key when retrying it")
    raw_metrics = headers.get("X-WebFL-Metrics", "{}")
    if len(raw_metrics) > 4096:
        raise UpdateRejected("header X-WebFL-Metrics is longer than 4096 characters")
    try:
        metrics = json.loads(raw_metrics)
    except json.JSONDecodeError:
        raise UpdateRejected("header X-WebFL-Metrics is not valid JSON") from None
    if not isinstance(metrics, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v) for k, v in metrics.items()):
        raise UpdateRejected("header X-WebFL-Metrics must be a JSON object of finite numbers")
    return UpdateMeta(integer("X-WebFL-Base-Version", 0), integer("X-WebFL-Samples", 1), key, metrics)


def decode_body(stream, content_length: int | None, encoding: str, num_parameters: int) -> np.ndarray:
    """Read a float32 vector of exactly ``num_parameters``, refusing oversized bodies early."""
    expected = 4 * num_parameters
    if encoding in ("", "identity"):
        limit = expected
    elif encoding == "gzip":
        limit = expected + expected // 50 + 1024  # incompressible data grows a little
    else:
        raise UpdateRejected(f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(f"the update is {content_length} bytes; this task's model takes {expected}")
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"the update is larger than this task's model ({expected} bytes)")
    if encoding == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, expected + 1)
        except zlib.error:
            raise UpdateRejected("the body is not valid gzip") from None
    if len(body) != expected:
        raise UpdateRejected(
            f"the update has {len(body)} bytes; this task's model needs {num_parameters} float32 values "
            f"({expected} bytes, little-endian)")
    vector = np.frombuffer(body, dtype="<f4")
    if not np.isfinite(vector).all():
        raise UpdateRejected("the update contains NaN or infinite values")
    return vector


class UpdateService:
    def __init__(self, tasks: TaskStore, params: ParamStore,
                 on_new_version: Callable[[str, int], None] | None = None) -> None:
        self.tasks = tasks
        self.db = tasks.db
        self.params = params
        self.on_new_version = on_new_version or (lambda task_id, version: None)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._current: dict[str, tuple[int, np.ndarray]] = {}  # newest global vector per task

    def _lock(self, task_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(task_id, threading.Lock())

    # --- receiving ------------------------------------------------------------------
    def submit(self, task: Task, client: Client, meta: UpdateMeta, vector: np.ndarray) -> dict:
        """Validate, persist and apply one update; return its acknowledgement."""
        existing = self._find(client.id, meta.idempotency_key)
        if existing is not None:
            return self._ack(existing, duplicate=True)
        strategy = make_strategy(task.config["aggregator"])
        base = self._check_versions(task, meta.base_version, strategy)
        base_params = self.params.get(base.params_sha256)
        bound = task.config.get("max_update_norm")
        if bound is not None:
            norm = float(np.linalg.norm(vector - base_params))
            if norm > bound:
                raise UpdateRejected(f"the update changes the model by {norm:.4g} (L2); this task allows {bound:g}")
        with self._lock(task.id):
            self._check_versions(task, meta.base_version, strategy)  # the world may have moved on
            try:
                with self.params.lock, self.db.transaction() as tx:
                    sha = self.params.put(vector)
                    cur = tx.execute(
                        "INSERT INTO updates(task_id, client_id, idempotency_key, base_version, num_samples, "
                        "params_sha256, metrics, received, status) VALUES(?,?,?,?,?,?,?,?,'pending')",
                        (task.id, client.id, meta.idempotency_key, meta.base_version, meta.num_samples,
                         sha, json.dumps(meta.metrics), time.time()))
                    update_id = cur.lastrowid
            except sqlite3.IntegrityError:  # the same key raced in from a retry
                return self._ack(self._find(client.id, meta.idempotency_key), duplicate=True)
            self._apply_pending(task, strategy)
        return self._ack(self._row(update_id))

    def _check_versions(self, task: Task, base_version: int, strategy: Strategy):
        current = self.tasks.current_version(task.id)
        base = self.tasks.version(task.id, base_version)
        if base is None or base_version > current.version:
            raise UpdateRejected(f"version {base_version} does not exist; the newest is {current.version}")
        if base.bundle_sha256 != current.bundle_sha256:
            raise Conflict("the task's model changed since this update started; fetch the new model",
                           {"current_version": current.version})
        staleness = current.version - base_version
        if staleness > task.config["max_staleness"]:
            raise Conflict(f"the update is {staleness} versions old; this task accepts at most "
                           f"{task.config['max_staleness']}", {"current_version": current.version})
        if getattr(strategy, "synchronous", False) and staleness > 0:
            raise Conflict("this round is over; fetch the current model and train again",
                           {"current_version": current.version})
        if not base.params_kept:
            raise Conflict(f"version {base_version} is no longer kept", {"current_version": current.version})
        return base

    # --- applying -------------------------------------------------------------------
    def _global(self, task_id: str, conn=None) -> tuple[int, np.ndarray, str]:
        current = self.tasks.current_version(task_id, conn)
        cached = self._current.get(task_id)
        if cached is None or cached[0] != current.version:
            cached = (current.version, self.params.get(current.params_sha256))
            self._current[task_id] = cached
        return current.version, cached[1], current.bundle_sha256

    def _pending(self, task_id: str) -> list:
        return self.db.connect().execute(
            "SELECT * FROM updates WHERE task_id=? AND status='pending' ORDER BY id", (task_id,)).fetchall()

    def _client_update(self, row, version: int) -> ClientUpdate:
        base = self.tasks.version(row["task_id"], row["base_version"])
        return ClientUpdate(params=self.params.get(row["params_sha256"]),
                            base=self.params.get(base.params_sha256), num_samples=row["num_samples"],
                            staleness=version - row["base_version"], received=row["received"])

    def _apply_pending(self, task: Task, strategy: Strategy) -> None:
        """Fold pending updates into the global model (caller holds the task's lock)."""
        rows = self._pending(task.id)
        if not rows:
            return
        if isinstance(strategy, FedAsync):
            for row in rows:  # one version per update, in arrival order
                version, x, bundle_sha = self._global(task.id)
                staleness = version - row["base_version"]
                if staleness > task.config["max_staleness"]:
                    self._discard([row["id"]])
                    continue
                result = strategy.aggregate(x, [self._client_update(row, version)])
                self._commit_version(task, version + 1, result.params, bundle_sha,
                                     [(row["id"], staleness, result.weights[0])])
            return
        version, x, bundle_sha = self._global(task.id)
        updates = [self._client_update(row, version) for row in rows]
        if strategy.ready(updates, time.time()):
            result = strategy.aggregate(x, updates)
            self._commit_version(task, version + 1, result.params, bundle_sha,
                                 [(row["id"], u.staleness, w) for row, u, w in zip(rows, updates, result.weights)])

    def _commit_version(self, task: Task, version: int, params: np.ndarray, bundle_sha: str,
                        consumed: list[tuple[int, int, float]]) -> None:
        params = np.ascontiguousarray(params, dtype=np.float32)
        with self.params.lock, self.db.transaction() as tx:
            sha = self.params.put(params)
            tx.execute("INSERT INTO versions(task_id, version, params_sha256, bundle_sha256, created, kind) "
                       "VALUES(?,?,?,?,?,'aggregate')", (task.id, version, sha, bundle_sha, time.time()))
            tx.executemany("UPDATE updates SET status='applied', applied_version=?, staleness=?, weight=? WHERE id=?",
                           [(version, s, w, uid) for uid, s, w in consumed])
        self._current[task.id] = (version, params)
        self._retain(task, version)
        self.on_new_version(task.id, version)

    def _discard(self, ids: list[int]) -> None:
        self.db.connect().executemany("UPDATE updates SET status='discarded' WHERE id=?", [(i,) for i in ids])

    def _retain(self, task: Task, newest: int) -> None:
        """Delete parameter files no longer needed: old versions and applied updates."""
        conn = self.db.connect()
        cutoff = newest - task.config["keep_versions"]
        old = conn.execute("SELECT version, params_sha256 FROM versions WHERE task_id=? AND version<=? "
                           "AND params_kept=1", (task.id, cutoff)).fetchall()
        conn.executemany("UPDATE versions SET params_kept=0 WHERE task_id=? AND version=?",
                         [(task.id, r["version"]) for r in old])
        candidates = {r["params_sha256"] for r in old}
        candidates |= {r["params_sha256"] for r in conn.execute(
            "SELECT params_sha256 FROM updates WHERE task_id=? AND applied_version=?", (task.id, newest))}
        with self.params.lock:
            for sha in candidates:
                in_use = conn.execute(
                    "SELECT 1 FROM versions WHERE params_sha256=? AND params_kept=1 UNION ALL "
                    "SELECT 1 FROM updates WHERE params_sha256=? AND status='pending' LIMIT 1", (sha, sha)).fetchone()
                if in_use is None:
                    self.params.delete(sha)

    # --- lifecycle ------------------------------------------------------------------
    def recover(self) -> None:
        """At start: apply what was acknowledged but not yet applied before a stop, then
        delete parameter files a crash left without a row (written, never referenced)."""
        for task in self.tasks.list():
            if self._pending(task.id):
                with self._lock(task.id):
                    self._apply_pending(task, make_strategy(task.config["aggregator"]))
        with self.params.lock:
            referenced = {r[0] for r in self.db.connect().execute(
                "SELECT params_sha256 FROM versions WHERE params_kept=1 UNION "
                "SELECT params_sha256 FROM updates WHERE status='pending'")}
            self.params.collect(referenced)

    def tick(self) -> None:
        """Close rounds whose deadline passed (called every second by a background thread)."""
        for task in self.tasks.list():
            strategy = make_strategy(task.config["aggregator"])
            if strategy.buffered:
                with self._lock(task.id):
                    self._apply_pending(task, strategy)

    # --- acknowledgements -------------------------------------------------------------
    def _find(self, client_id: str, key: str):
        return self.db.connect().execute(
            "SELECT * FROM updates WHERE client_id=? AND idempotency_key=?", (client_id, key)).fetchone()

    def _row(self, update_id: int):
        return self.db.connect().execute("SELECT * FROM updates WHERE id=?", (update_id,)).fetchone()

    def _ack(self, row, duplicate: bool = False) -> dict:
        current = self.tasks.current_version(row["task_id"])
        return {"update_id": row["id"], "status": row["status"] if row["status"] != "pending" else "buffered",
                "duplicate": duplicate, "base_version": row["base_version"],
                "applied_version": row["applied_version"], "staleness": row["staleness"],
                "weight": row["weight"], "current_version": current.version}
