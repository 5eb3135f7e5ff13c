"""The ``updates`` table: every acknowledged update, its outcome and what it changed.

Arrival order is the row id; ``pending`` rows are acknowledged work waiting to be merged.
"""
from __future__ import annotations

import json
import time

import numpy as np

from ..db import Database


class UpdatesTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- one update ---------------------------------------------------------------------
    def find(self, client_id: str, key: str):
        return self.db.connect().execute(
            "SELECT * FROM updates WHERE client_id=? AND idempotency_key=?", (client_id, key)).fetchone()

    def get(self, update_id: int):
        return self.db.connect().execute("SELECT * FROM updates WHERE id=?", (update_id,)).fetchone()

    def insert(self, conn, *, task_id: str, client_id: str, key: str, base_version: int, num_samples: int,
               params_sha: str, metrics: dict, status: str, change_norm: float, sketch: bytes,
               error: str | None) -> int:
        """Record an acknowledged update (inside the caller's transaction); its row id."""
        return conn.execute(
            "INSERT INTO updates(task_id, client_id, idempotency_key, base_version, num_samples, params_sha256, "
            "metrics, received, status, change_norm, sketch, error) VALUES(?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
            (task_id, client_id, key, base_version, num_samples, params_sha, json.dumps(metrics), time.time(),
             status, change_norm, sketch, error)).fetchone()[0]

    # --- a task's updates -----------------------------------------------------------------
    def pending(self, task_id: str) -> list:
        return self.db.connect().execute(
            "SELECT * FROM updates WHERE task_id=? AND status='pending' ORDER BY id", (task_id,)).fetchall()

    def mark_applied(self, conn, version: int, consumed: list[tuple[int, int, float]]) -> None:
        """``consumed``: (update id, staleness, weight) of the updates merged into ``version``."""
        conn.executemany("UPDATE updates SET status='applied', applied_version=?, staleness=?, weight=? WHERE id=?",
                         [(version, s, w, uid) for uid, s, w in consumed])

    def discard(self, ids: list[int], reason: str | None = None) -> None:
        self.db.connect().executemany("UPDATE updates SET status='discarded', error=? WHERE id=?",
                                      [(reason, i) for i in ids])

    def quarantine(self, ids: list[int], reason: str) -> None:
        self.db.connect().executemany("UPDATE updates SET status='quarantined', error=? WHERE id=?",
                                      [(reason, i) for i in ids])

    def discard_waiting_of_task(self, task_id: str, reason: str, conn) -> int:
        return conn.execute("UPDATE updates SET status='discarded', error=? WHERE task_id=? AND status='pending'",
                            (reason, task_id)).rowcount

    def discard_waiting_of_client(self, client_id: str, reason: str, conn) -> int:
        return conn.execute("UPDATE updates SET status='discarded', error=? WHERE client_id=? AND status='pending'",
                            (reason, client_id)).rowcount

    def applied_into(self, task_id: str, version: int) -> set[str]:
        """Parameter files of the updates merged into ``version`` (no longer needed after)."""
        return {r[0] for r in self.db.connect().execute(
            "SELECT params_sha256 FROM updates WHERE task_id=? AND applied_version=?", (task_id, version))}

    def quarantined(self, task_id: str) -> list[dict]:
        return [dict(r) for r in self.db.connect().execute(
            "SELECT id, client_id, received, error FROM updates WHERE task_id=? AND status='quarantined' ORDER BY id",
            (task_id,))]

    def status_counts(self, task_id: str) -> dict[str, int]:
        return {r["status"]: r["n"] for r in self.db.connect().execute(
            "SELECT status, COUNT(*) AS n FROM updates WHERE task_id=? GROUP BY status", (task_id,))}

    def applied_since(self, task_id: str, since: int) -> list:
        """Merged updates after version ``since``, with their participant's name, in arrival order."""
        return self.db.connect().execute(
            "SELECT u.applied_version, u.client_id, c.name, u.staleness, u.weight, u.num_samples, u.metrics, "
            "u.base_version, u.received FROM updates u JOIN clients c ON c.id = u.client_id "
            "WHERE u.task_id=? AND u.status='applied' AND u.applied_version>? ORDER BY u.id",
            (task_id, since)).fetchall()

    def recent_change_norms(self, task_id: str, limit: int) -> list[float]:
        return [r[0] for r in self.db.connect().execute(
            "SELECT change_norm FROM updates WHERE task_id=? AND status='applied' AND change_norm IS NOT NULL "
            "ORDER BY id DESC LIMIT ?", (task_id, limit))]

    def active_participants(self, task_id: str, client_id: str, window: int) -> int:
        """Distinct participants among the last ``window`` merged or waiting updates, this one's included."""
        rows = self.db.connect().execute(
            "SELECT client_id FROM updates WHERE task_id=? AND status IN ('applied', 'pending') "
            "ORDER BY id DESC LIMIT ?", (task_id, window))
        return len({r["client_id"] for r in rows} | {client_id})

    def others_latest_sketches(self, task_id: str, client_id: str, window: int) -> list[np.ndarray]:
        """The latest sketch of each other participant among the last ``window`` merged or waiting updates."""
        rows = self.db.connect().execute(
            "SELECT client_id, sketch FROM updates WHERE task_id=? AND status IN ('applied', 'pending') "
            "AND sketch IS NOT NULL AND client_id<>? ORDER BY id DESC LIMIT ?", (task_id, client_id, window))
        latest: dict[str, np.ndarray] = {}
        for r in rows:
            latest.setdefault(r["client_id"], np.frombuffer(r["sketch"], np.float32))
        return list(latest.values())

    # --- a participant's updates ----------------------------------------------------------
    def received_since(self, client_id: str, since: float, limit: int) -> list[float]:
        """Arrival times of the participant's updates after ``since`` (newest first, at most ``limit``)."""
        return [r[0] for r in self.db.connect().execute(
            "SELECT received FROM updates WHERE client_id=? AND received>? ORDER BY received DESC LIMIT ?",
            (client_id, since, limit))]

    def last_applied_version(self, task_id: str, client_id: str) -> int | None:
        row = self.db.connect().execute(
            "SELECT applied_version FROM updates WHERE task_id=? AND client_id=? AND status='applied' "
            "ORDER BY id DESC LIMIT 1", (task_id, client_id)).fetchone()
        return None if row is None else row[0]

    def waiting_of_client(self, task_id: str, client_id: str) -> int | None:
        row = self.db.connect().execute(
            "SELECT id FROM updates WHERE task_id=? AND client_id=? AND status='pending' LIMIT 1",
            (task_id, client_id)).fetchone()
        return None if row is None else row[0]
