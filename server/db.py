"""The embedded SQLite database: one file under the data dir, WAL mode, one connection per
thread. Its locks and leases are process-local: the embedded default is one process (the
PostgreSQL backend, :mod:`server.storage.postgres`, is for several)."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from .locks import LocalLocks

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
    bundle_sha256 TEXT,              -- sha256 of the ready bundle's manifest.json
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS clients (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks(id),
    token_sha256 TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    joined REAL NOT NULL,
    blocked REAL                     -- when an admin blocked it (NULL: active)
);
CREATE TABLE IF NOT EXISTS versions (
    task_id TEXT NOT NULL REFERENCES tasks(id),
    version INTEGER NOT NULL,
    params_sha256 TEXT NOT NULL,     -- content address of the parameter file
    bundle_sha256 TEXT NOT NULL,     -- which bundle's layout the vector follows
    created REAL NOT NULL,
    kind TEXT NOT NULL,              -- initial | aggregate
    params_kept INTEGER NOT NULL DEFAULT 1,  -- 0 once retention deleted the file
    PRIMARY KEY (task_id, version)
);
CREATE TABLE IF NOT EXISTS updates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- arrival order
    task_id TEXT NOT NULL REFERENCES tasks(id),
    client_id TEXT NOT NULL REFERENCES clients(id),
    idempotency_key TEXT NOT NULL,
    base_version INTEGER NOT NULL,
    num_samples INTEGER NOT NULL,
    params_sha256 TEXT NOT NULL,
    metrics TEXT NOT NULL,           -- JSON reported by the client
    received REAL NOT NULL,
    status TEXT NOT NULL,            -- pending | applied | discarded | quarantined
    applied_version INTEGER,
    staleness INTEGER,
    weight REAL,
    change_norm REAL,                -- L2 norm of params - base (what the client changed)
    sketch BLOB,                     -- count sketch of that change (server.direction)
    error TEXT,                      -- why it was discarded or quarantined
    UNIQUE (client_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS updates_pending ON updates(task_id, status, id);
CREATE TABLE IF NOT EXISTS evaluations (
    task_id TEXT NOT NULL REFERENCES tasks(id),
    version INTEGER NOT NULL,
    accuracy REAL NOT NULL,
    loss REAL NOT NULL,
    per_class TEXT NOT NULL,         -- JSON list, one accuracy per class (null if absent)
    confusion TEXT NOT NULL,         -- JSON matrix [true][predicted]
    samples INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (task_id, version)
);
CREATE TABLE IF NOT EXISTS study_consents (
    client_id TEXT PRIMARY KEY REFERENCES clients(id),
    task_id TEXT NOT NULL REFERENCES tasks(id),
    agreed INTEGER NOT NULL,         -- 1: agreed to have actions recorded; 0: declined
    notice_sha256 TEXT NOT NULL,     -- the notice text the participant answered
    decided REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS interactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- arrival order
    task_id TEXT NOT NULL REFERENCES tasks(id),
    client_id TEXT NOT NULL REFERENCES clients(id),
    event_id TEXT NOT NULL,          -- chosen by the participant: a resent batch stores nothing twice
    at REAL NOT NULL,                -- when it happened on the participant's device (unix seconds)
    received REAL NOT NULL,
    action TEXT NOT NULL,
    version INTEGER,                 -- the global version the participant's model held
    detail TEXT NOT NULL,            -- JSON object of bounded values; never pixels
    UNIQUE (client_id, event_id)
);
CREATE INDEX IF NOT EXISTS interactions_task ON interactions(task_id, id);
"""


class Settings:
    """The ``settings`` rows (the admin token's hash), the same on both backends."""

    def get_setting(self, key: str) -> str | None:
        row = self.connect().execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row["value"] if row else None

    def set_setting(self, key: str, value: str) -> None:
        self.connect().execute(
            "INSERT INTO settings(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value))


class Database(Settings):
    """Owns the database file; hands each thread its own connection."""

    kind = "sqlite"
    shared_files = False  # bundles, validation sets and parameters are files under the data dir
    integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
    data_errors: tuple[type[Exception], ...] = (sqlite3.DataError,)  # a value it cannot hold

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._locks = LocalLocks()
        self.lock = self._locks.lock
        self.try_lease = self._locks.try_lease
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            _add_missing_columns(conn)

    def connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (before a fork, for example)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def transaction(self):
        """``with db.transaction() as conn:`` runs a write transaction (BEGIN IMMEDIATE)."""
        return _Transaction(self.connect())

    def after_copy(self, conn: sqlite3.Connection) -> None:
        """Nothing to do: AUTOINCREMENT follows the largest id inserted."""


# Columns added after the first release: (table, column, declaration).
_ADDED_COLUMNS = (("clients", "blocked", "REAL"), ("updates", "error", "TEXT"), ("updates", "change_norm", "REAL"),
                  ("updates", "sketch", "BLOB"))


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a database made by an earlier release up to the current schema."""
    for table, column, decl in _ADDED_COLUMNS:
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
