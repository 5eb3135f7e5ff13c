"""The PostgreSQL backend: the same tables and statements as the embedded SQLite one, for
several server processes (on one machine or many) sharing one database.

What differs from SQLite lives here and nowhere else:

- the schema's types (the embedded schema translated: ``BIGSERIAL``, ``BIGINT``, ``BYTEA``,
  ``DOUBLE PRECISION``) and two more tables,
  ``params`` (parameter vectors, content-addressed as on disk) and ``files`` (bundle files
  and validation sets), so no shared filesystem is needed;
- placeholders: the storage modules write ``?``; each statement is rewritten to ``%s`` once;
- locks: the per-task lock and the background-job leases are PostgreSQL advisory locks, so
  they hold across processes and machines and are released when a process dies (its
  connection closes).

Each thread has its own connection (autocommit; ``transaction()`` opens a real one).
"""
from __future__ import annotations

import contextlib
import hashlib
import threading
from functools import lru_cache
from typing import Iterator

import psycopg
from psycopg.rows import RowMaker

from ..db import SCHEMA as SQLITE_SCHEMA, Settings

# The embedded schema with PostgreSQL's types (one home for the tables: server/db.py), then
# the two tables that replace files under the data dir. SQLite's integers are 64-bit: so are these.
_TYPES = (("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY"), (" INTEGER", " BIGINT"),
          (" REAL", " DOUBLE PRECISION"), (" BLOB", " BYTEA"))


def _postgres_types(sql: str) -> str:
    for sqlite_type, postgres_type in _TYPES:
        sql = sql.replace(sqlite_type, postgres_type)
    return sql


SCHEMA = _postgres_types(SQLITE_SCHEMA) + """
CREATE TABLE IF NOT EXISTS params (
    sha256 TEXT PRIMARY KEY,          -- sha256 of the little-endian float32 bytes
    data BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    name TEXT PRIMARY KEY,            -- bundle/<bundle sha>/<file>, validation/<task id>
    sha256 TEXT NOT NULL,
    data BYTEA NOT NULL
);
-- Float vectors hardly compress: storing them out of line uncompressed saves PostgreSQL from
-- trying (pglz on a 14 MB vector costs more than writing it; measured in bench_storage.py).
DO $$ BEGIN
    IF (SELECT attstorage FROM pg_attribute WHERE attrelid = 'params'::regclass AND attname = 'data') <> 'e' THEN
        ALTER TABLE params ALTER COLUMN data SET STORAGE EXTERNAL;
        ALTER TABLE files ALTER COLUMN data SET STORAGE EXTERNAL;
    END IF;
END $$;
"""


class Row(tuple):
    """A result row read by position or by column name, like :class:`sqlite3.Row`."""

    __slots__ = ()
    _index: dict[str, int] = {}

    def __getitem__(self, key):
        return tuple.__getitem__(self, self._index[key] if isinstance(key, str) else key)

    def keys(self) -> list[str]:
        return list(self._index)


def _rows(cursor) -> RowMaker:
    names = [c.name for c in cursor.description or ()]
    cls = type("Row", (Row,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})
    return cls


@lru_cache(maxsize=512)
def _dialect(sql: str) -> str:
    """The storage modules' ``?`` placeholders as psycopg's ``%s``."""
    return sql.replace("?", "%s")


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a lock's name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Connection:
    """A psycopg connection that speaks the storage modules' dialect."""

    def __init__(self, raw: psycopg.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, params: tuple | list = ()):
        return self.raw.execute(_dialect(sql), params)

    def executemany(self, sql: str, seq) -> psycopg.Cursor:
        cur = self.raw.cursor()
        cur.executemany(_dialect(sql), list(seq))
        return cur

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


class Lease:
    """An advisory lock held on its own connection until :meth:`release` or the process's
    death (PostgreSQL drops a dead session's locks)."""

    def __init__(self, conn: psycopg.Connection, key: int) -> None:
        self._conn = conn
        self._key = key

    def release(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
        self._conn.close()


class PostgresDatabase(Settings):
    """Owns the connection settings; hands each thread its own connection."""

    kind = "postgresql"
    shared_files = True  # bundles, validation sets and parameters live in the database
    integrity_errors: tuple[type[Exception], ...] = (psycopg.IntegrityError,)
    data_errors: tuple[type[Exception], ...] = (psycopg.DataError,)  # e.g. a NUL character in text

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        with self._new() as conn:
            # Several processes may start at once: one creates the schema, the others wait.
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("webfl:schema"),))
                conn.execute(SCHEMA)

    def _new(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True, row_factory=_rows)

    def connect(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.raw.closed or conn.raw.broken:
            conn = Connection(self._new())
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.raw.close()
            self._local.conn = None
        locker = getattr(self._local, "locker", None)
        if locker is not None:
            locker.close()
            self._local.locker = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        conn = self.connect()
        with conn.raw.transaction():
            yield conn

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the advisory lock ``name`` (waiting for it), across every process."""
        locker = getattr(self._local, "locker", None)
        if locker is None or locker.closed or locker.broken:
            locker = self._local.locker = psycopg.connect(self.url, autocommit=True)
        key = lock_key(name)
        locker.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            locker.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def try_lease(self, name: str) -> Lease | None:
        """The lease ``name`` if no other live process holds it."""
        conn = psycopg.connect(self.url, autocommit=True)
        key = lock_key(name)
        if conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
            return Lease(conn, key)
        conn.close()
        return None

    def after_copy(self, conn: Connection) -> None:
        """Rows copied with their ids: the next id of each numbered table follows the largest."""
        for table in ("updates", "interactions"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) "
                         f"FROM {table}")
