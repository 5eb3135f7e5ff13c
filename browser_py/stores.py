"""Where a client keeps its images, labels and small state, in CPython.

The browser twin is ``idb.IndexedDBStore``. All stores share one async interface:
``put_items / get_item / items / delete_item / clear_items`` for image records (dicts with
``data`` as bytes; many are written in one transaction, which is what makes imports fast) and
``get_meta / set_meta / set_metas`` for small state (JSON values or bytes; setting None
deletes; ``set_metas`` writes several together).

Writes are durable (on disk when the call returns) unless ``durable=False``: then a store may
flush later, for what can be rebuilt or redone (computed features, the page's layout, the
emptying of an acknowledged outbox, whose resend the server answers with its first ack).
Photos, labels and an update waiting to be sent are always written durably. The CPython
stores write every change the same way.
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol


class Store(Protocol):
    """What the client needs from a store: image records and small state. Implemented by
    :class:`MemoryStore`, :class:`SqliteStore` and (in the browser) ``idb.IndexedDBStore``."""

    async def put_items(self, items: list[dict], durable: bool = True) -> None:
        """Write these records together: all are stored when it returns, or none (see the
        module's note on ``durable``)."""

    async def get_item(self, item_id: str) -> dict | None: ...

    async def items(self) -> list[dict]: ...

    async def delete_item(self, item_id: str) -> None: ...

    async def clear_items(self) -> None: ...

    async def get_meta(self, key: str) -> Any: ...

    async def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value or bytes; None deletes the key."""

    async def set_metas(self, values: dict[str, Any], durable: bool = True) -> None:
        """:meth:`set_meta` for each key, together: all are stored when it returns, or none."""


class MemoryStore:
    """Everything in dicts: for tests and short-lived simulated clients."""

    def __init__(self) -> None:
        self._items: dict[str, dict] = {}
        self._meta: dict[str, object] = {}

    async def put_items(self, items: list[dict], durable: bool = True) -> None:
        self._items.update((item["id"], dict(item)) for item in items)

    async def get_item(self, item_id: str) -> dict | None:
        item = self._items.get(item_id)
        return dict(item) if item else None

    async def items(self) -> list[dict]:
        return [dict(i) for i in self._items.values()]

    async def delete_item(self, item_id: str) -> None:
        self._items.pop(item_id, None)

    async def clear_items(self) -> None:
        self._items.clear()

    async def get_meta(self, key: str):
        return self._meta.get(key)

    async def set_meta(self, key: str, value) -> None:
        await self.set_metas({key: value})

    async def set_metas(self, values: dict, durable: bool = True) -> None:
        for key, value in values.items():
            if value is None:
                self._meta.pop(key, None)
            else:
                self._meta[key] = value


class SqliteStore:
    """One SQLite file per client (the caller names it by task and client)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, record TEXT NOT NULL, data BLOB NOT NULL)")
        self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, kind TEXT NOT NULL, value BLOB)")

    @contextmanager
    def _transaction(self):
        """All the statements inside, or none (the connection autocommits otherwise, and
        ``with conn:`` alone opens none then)."""
        self._conn.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    async def put_items(self, items: list[dict], durable: bool = True) -> None:
        rows = [(item["id"], json.dumps({k: v for k, v in item.items() if k != "data"}), item["data"])
                for item in items]
        with self._transaction():
            self._conn.executemany("INSERT OR REPLACE INTO items(id, record, data) VALUES(?,?,?)", rows)

    def _row(self, row) -> dict:
        return json.loads(row[0]) | {"data": bytes(row[1])}

    async def get_item(self, item_id: str) -> dict | None:
        row = self._conn.execute("SELECT record, data FROM items WHERE id=?", (item_id,)).fetchone()
        return self._row(row) if row else None

    async def items(self) -> list[dict]:
        return [self._row(r) for r in self._conn.execute("SELECT record, data FROM items ORDER BY rowid")]

    async def delete_item(self, item_id: str) -> None:
        self._conn.execute("DELETE FROM items WHERE id=?", (item_id,))

    async def clear_items(self) -> None:
        self._conn.execute("DELETE FROM items")

    async def get_meta(self, key: str):
        row = self._conn.execute("SELECT kind, value FROM meta WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        return bytes(row[1]) if row[0] == "bytes" else json.loads(row[1])

    async def set_meta(self, key: str, value) -> None:
        await self.set_metas({key: value})

    async def set_metas(self, values: dict, durable: bool = True) -> None:
        with self._transaction():
            for key, value in values.items():
                if value is None:
                    self._conn.execute("DELETE FROM meta WHERE key=?", (key,))
                    continue
                kind, blob = ("bytes", value) if isinstance(value, (bytes, bytearray)) else ("json", json.dumps(value))
                self._conn.execute("INSERT OR REPLACE INTO meta(key, kind, value) VALUES(?,?,?)", (key, kind, blob))

    def close(self) -> None:
        self._conn.close()
