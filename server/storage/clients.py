"""The ``clients`` table: participants, their hashed tokens and whether they are blocked."""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..db import Database


@dataclass
class Client:
    id: str
    task_id: str
    name: str
    blocked: bool = False


class ClientsTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, client_id: str, task_id: str, token_sha256: str, name: str) -> None:
        self.db.connect().execute(
            "INSERT INTO clients(id, task_id, token_sha256, name, joined) VALUES(?,?,?,?,?)",
            (client_id, task_id, token_sha256, name, time.time()))

    def rename(self, client_id: str, name: str) -> None:
        self.db.connect().execute("UPDATE clients SET name=? WHERE id=?", (name, client_id))

    def by_token_hash(self, token_sha256: str) -> Client | None:
        row = self.db.connect().execute(
            "SELECT id, task_id, name, blocked FROM clients WHERE token_sha256=?", (token_sha256,)).fetchone()
        return Client(row["id"], row["task_id"], row["name"], row["blocked"] is not None) if row else None

    def is_blocked(self, client_id: str, conn=None) -> bool:
        row = (conn or self.db.connect()).execute("SELECT blocked FROM clients WHERE id=?", (client_id,)).fetchone()
        return row is not None and row["blocked"] is not None

    def exists(self, task_id: str, client_id: str, conn=None) -> bool:
        return (conn or self.db.connect()).execute(
            "SELECT 1 FROM clients WHERE id=? AND task_id=?", (client_id, task_id)).fetchone() is not None

    def block(self, client_id: str, conn=None) -> None:
        (conn or self.db.connect()).execute(
            "UPDATE clients SET blocked=? WHERE id=? AND blocked IS NULL", (time.time(), client_id))

    def count(self, task_id: str) -> int:
        return self.db.connect().execute("SELECT COUNT(*) FROM clients WHERE task_id=?", (task_id,)).fetchone()[0]

    def contributions(self, task_id: str) -> list[dict]:
        """Participants with what they contributed: updates by outcome, images claimed, last seen."""
        rows = self.db.connect().execute(
            "SELECT c.id, c.name, c.joined, c.blocked, "
            "COUNT(u.id) FILTER (WHERE u.status='applied') AS updates, "
            "COUNT(u.id) FILTER (WHERE u.status='pending') AS pending, "
            "COUNT(u.id) FILTER (WHERE u.status='discarded') AS discarded, "
            "COUNT(u.id) FILTER (WHERE u.status='quarantined') AS quarantined, "
            "COALESCE(SUM(u.num_samples) FILTER (WHERE u.status='applied'), 0) AS samples_claimed, "
            "MAX(u.received) AS last_update "
            "FROM clients c LEFT JOIN updates u ON u.client_id = c.id "
            "WHERE c.task_id=? GROUP BY c.id ORDER BY c.joined", (task_id,)).fetchall()
        return [dict(r) for r in rows]
