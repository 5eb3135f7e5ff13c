"""The ``study_consents`` and ``interactions`` tables: a user study's answers and action log."""
from __future__ import annotations

import json
import time

from ..db import Database


class InteractionsTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    def decide(self, task_id: str, client_id: str, agreed: bool, notice_sha256: str) -> None:
        """Record a participant's answer to the study notice. Declining after agreeing
        withdraws: what was recorded of this participant is deleted in the same transaction."""
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO study_consents(client_id, task_id, agreed, notice_sha256, decided) "
                         "VALUES(?,?,?,?,?) ON CONFLICT (client_id) DO UPDATE SET agreed=excluded.agreed, "
                         "notice_sha256=excluded.notice_sha256, decided=excluded.decided",
                         (client_id, task_id, int(agreed), notice_sha256, time.time()))
            if not agreed:
                conn.execute("DELETE FROM interactions WHERE client_id=?", (client_id,))

    def consent(self, client_id: str) -> dict | None:
        row = self.db.connect().execute(
            "SELECT agreed, notice_sha256, decided FROM study_consents WHERE client_id=?", (client_id,)).fetchone()
        return None if row is None else {"agreed": bool(row["agreed"]), "notice_sha256": row["notice_sha256"],
                                         "decided": row["decided"]}

    def count(self, client_id: str, conn=None) -> int:
        return (conn or self.db.connect()).execute(
            "SELECT COUNT(*) FROM interactions WHERE client_id=?", (client_id,)).fetchone()[0]

    def add(self, task_id: str, client_id: str, events: list[dict], notice_sha256: str,
            most: int) -> tuple[int, int] | None:
        """Store validated events; return (stored, already stored), or None without consent to
        this notice (checked in the same transaction: a withdrawal racing a batch leaves nothing). A batch
        that would take the participant past ``most`` events raises OverflowError, storing nothing."""
        ids = [e["id"] for e in events]
        now = time.time()
        with self.db.transaction() as conn:
            row = conn.execute("SELECT agreed, notice_sha256 FROM study_consents WHERE client_id=?",
                               (client_id,)).fetchone()
            if row is None or not row["agreed"] or row["notice_sha256"] != notice_sha256:
                return None
            marks = ",".join("?" for _ in ids)
            known = {r["event_id"] for r in conn.execute(
                f"SELECT event_id FROM interactions WHERE client_id=? AND event_id IN ({marks})", (client_id, *ids))}
            fresh, seen = [], set()
            for e in events:
                if e["id"] in known or e["id"] in seen:
                    continue
                seen.add(e["id"])
                fresh.append((task_id, client_id, e["id"], e["at"], now, e["action"], e.get("version"),
                              json.dumps(e.get("detail") or {}, sort_keys=True)))
            if fresh and self.count(client_id, conn) + len(fresh) > most:
                raise OverflowError(most)
            if fresh:
                conn.executemany("INSERT INTO interactions(task_id, client_id, event_id, at, received, action, "
                                 "version, detail) VALUES(?,?,?,?,?,?,?,?)", fresh)
        return len(fresh), len(events) - len(fresh)

    def for_task(self, task_id: str) -> list[dict]:
        """Every recorded event of a task, in the order each participant's actions happened."""
        rows = self.db.connect().execute(
            "SELECT id, client_id, event_id, at, received, action, version, detail FROM interactions "
            "WHERE task_id=? ORDER BY client_id, at, id", (task_id,))
        return [dict(r) | {"detail": json.loads(r["detail"])} for r in rows]

    def summary(self, task_id: str) -> dict:
        """Counts for the admin page: answers to the notice and recorded events."""
        conn = self.db.connect()
        answers = {bool(r["agreed"]): r["n"] for r in conn.execute(
            "SELECT agreed, COUNT(*) AS n FROM study_consents WHERE task_id=? GROUP BY agreed", (task_id,))}
        events = conn.execute("SELECT COUNT(*) FROM interactions WHERE task_id=?", (task_id,)).fetchone()[0]
        return {"agreed": answers.get(True, 0), "declined": answers.get(False, 0), "events": events}
