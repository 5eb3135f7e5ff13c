"""The SQLite database: one file under the data dir, WAL mode, one connection per thread."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    config TEXT NOT NULL,            -- JSON: classes, model, aggregator, training parameters
    join_code TEXT NOT NULL UNIQUE,
    bundle_status TEXT NOT NULL,     -- pending | building | ready | failed
    bundle_error TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    task_id TEXT NOT NULL REFERENCES tasks(id),
    version INTEGER NOT NULL,
    params_sha256 TEXT NOT NULL,     -- content address of the parameter file
    created REAL NOT NULL,
    PRIMARY KEY (task_id, version)
);
"""


class Database:
    """Owns the database file; hands each thread its own connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)

    def connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def get_setting(self, key: str) -> str | None:
        row = self.connect().execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row["value"] if row else None

    def set_setting(self, key: str, value: str) -> None:
        self.connect().execute(
            "INSERT INTO settings(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value))
