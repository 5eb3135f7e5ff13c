"""IndexedDB store for the browser: the twin of ``stores.SqliteStore``.

One database per (task, client slot) keeps several clients in one browser apart. Writes
wait for the transaction's ``complete`` event (with strict durability), so when a call
returns the label or image is on disk and survives a reload.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json

from .dataset import Item
from .jsvalues import js_object, uint8array

VERSION = 1
# an item record's fields besides the image bytes: those of dataset.Item (one home)
FIELDS = tuple(f.name for f in dataclasses.fields(Item) if f.name != "data")


class StoreError(RuntimeError):
    pass


def _wait(target, ok_event: str, value=lambda t: t.result):
    """A future for an IDBRequest / IDBTransaction event; the proxies are destroyed after."""
    from pyodide.ffi import create_proxy

    fut = asyncio.get_event_loop().create_future()
    proxies = []

    def done(result=None, error=None):
        for p in proxies:
            p.destroy()
        if fut.done():
            return
        if error is not None:
            fut.set_exception(StoreError(error))
        else:
            fut.set_result(result)

    ok = create_proxy(lambda event: done(result=value(target)))
    bad = create_proxy(lambda event: done(error=str(getattr(target, "error", None) or "IndexedDB error")))
    proxies += [ok, bad]
    target.addEventListener(ok_event, ok)
    target.addEventListener("error", bad)
    if ok_event == "complete":
        target.addEventListener("abort", bad)
    return fut


class IndexedDBStore:
    def __init__(self, name: str) -> None:
        self.name = name
        self._db = None

    async def open(self) -> "IndexedDBStore":
        import js
        from pyodide.ffi import create_proxy

        request = js.indexedDB.open(self.name, VERSION)

        def upgrade(event):
            db = request.result
            names = list(db.objectStoreNames)
            if "items" not in names:
                db.createObjectStore("items", js_object({"keyPath": "id"}))
            if "meta" not in names:
                db.createObjectStore("meta", js_object({"keyPath": "key"}))

        upgrade_proxy = create_proxy(upgrade)
        request.addEventListener("upgradeneeded", upgrade_proxy)
        try:
            self._db = await _wait(request, "success")
        finally:
            upgrade_proxy.destroy()
        return self

    def _tx(self, store: str, mode: str):
        tx = self._db.transaction(store, mode, js_object({"durability": "strict"}))
        return tx, tx.objectStore(store)

    async def _write(self, store: str, op: str, *calls: tuple) -> None:
        """``op(*args)`` for each of ``calls`` in one transaction (one disk flush for all)."""
        tx, os_ = self._tx(store, "readwrite")
        done = _wait(tx, "complete", value=lambda t: None)
        method = getattr(os_, op)
        for args in calls:
            method(*args)
        await done

    async def _read(self, store: str, op: str, *args):
        tx, os_ = self._tx(store, "readonly")
        return await _wait(getattr(os_, op)(*args), "success")

    # --- items ------------------------------------------------------------------------
    @staticmethod
    def _record(item: dict):
        import js

        record = js.Object.new()
        for key in FIELDS:
            setattr(record, key, item.get(key))
        record.data = uint8array(item["data"])
        return record

    async def put_items(self, items: list[dict]) -> None:
        await self._write("items", "put", *((self._record(item),) for item in items))

    @staticmethod
    def _item(record) -> dict:
        out = {key: getattr(record, key, None) for key in FIELDS}
        out["data"] = record.data.to_bytes()
        return out

    async def get_item(self, item_id: str) -> dict | None:
        record = await self._read("items", "get", item_id)
        return None if record is None else self._item(record)

    async def items(self) -> list[dict]:
        return [self._item(r) for r in await self._read("items", "getAll")]

    async def delete_item(self, item_id: str) -> None:
        await self._write("items", "delete", (item_id,))

    async def clear_items(self) -> None:
        await self._write("items", "clear", ())

    # --- meta -------------------------------------------------------------------------
    async def get_meta(self, key: str):
        record = await self._read("meta", "get", key)
        if record is None:
            return None
        return record.value.to_bytes() if record.kind == "bytes" else json.loads(record.value)

    async def set_meta(self, key: str, value) -> None:
        import js

        if value is None:
            await self._write("meta", "delete", (key,))
            return
        record = js.Object.new()
        record.key = key
        if isinstance(value, (bytes, bytearray)):
            record.kind, record.value = "bytes", uint8array(value)
        else:
            record.kind, record.value = "json", json.dumps(value)
        await self._write("meta", "put", (record,))
