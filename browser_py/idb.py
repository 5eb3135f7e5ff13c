"""IndexedDB store for the browser: the twin of ``stores.SqliteStore``.

One database per (task, client slot) keeps several clients in one browser apart. Writes
wait for the transaction's ``complete`` event (with strict durability), so when a call
returns the label or image is on disk and survives a reload.

An image's bytes live in a ``photos`` store of their own, written once: an id is the
image's content hash, so its bytes never change, and a record rewritten for a label, a
suggestion or features no longer copies its photo (a 200-photo "accept all" held the page
84-106 ms per write with the photos inside). Records written before (version 1) carry
their bytes and are read as they are; they move to ``photos`` when next written.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json

from .dataset import Item
from .jsvalues import js_object, uint8array

VERSION = 2  # 2: photos apart from records
# photo bytes copied into a write per turn of the page (16 MB in one turn held it 260-520 ms)
PUT_SLICE_BYTES = 2 * 1024 * 1024
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
        # ids whose bytes are known to be in "photos" (read or written by this page); any
        # other id's photo is written with its record, so a stale set costs a copy, not a photo
        self._photos: set[str] = set()

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
            if "photos" not in names:
                db.createObjectStore("photos", js_object({"keyPath": "id"}))

        upgrade_proxy = create_proxy(upgrade)
        request.addEventListener("upgradeneeded", upgrade_proxy)
        try:
            self._db = await _wait(request, "success")
        finally:
            upgrade_proxy.destroy()
        return self

    def _tx(self, store: str | list[str], mode: str, durable: bool = True):
        from pyodide.ffi import to_js

        # strict: on disk when the transaction completes; relaxed: the browser may flush later
        # (lost only if the device itself fails before), for what can be rebuilt or redone
        durability = "strict" if durable else "relaxed"
        tx = self._db.transaction(to_js(store), mode, js_object({"durability": durability}))
        return tx, (tx.objectStore(store) if isinstance(store, str) else None)

    async def _write(self, store: str, calls: list[tuple[str, object]], durable: bool = True) -> None:
        """``op(arg)`` for each (op, arg) in ``calls``, in one transaction (one disk flush for
        all). The calls are made before the transaction opens: nothing can fail half-way."""
        tx, os_ = self._tx(store, "readwrite", durable)
        done = _wait(tx, "complete", value=lambda t: None)
        for op, arg in calls:
            getattr(os_, op)(arg)
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
        return record

    @staticmethod
    def _photo(item: dict):
        import js

        photo = js.Object.new()
        photo.id, photo.data = item["id"], uint8array(item["data"])
        return photo

    async def put_items(self, items: list[dict], durable: bool = True) -> None:
        """All in one transaction, handed over PUT_SLICE_BYTES of photos at a time: each slice
        goes in when the previous one's last write succeeds (a transaction stays open in its
        requests' callbacks), so the page runs between slices."""
        from pyodide.ffi import create_proxy

        tx, _ = self._tx(["items", "photos"], "readwrite", durable)
        done = _wait(tx, "complete", value=lambda t: None)
        records, photos = tx.objectStore("items"), tx.objectStore("photos")
        fresh = [item["id"] for item in items if item["id"] not in self._photos]
        waiting = list(reversed(items))

        def put_slice(event=None) -> None:
            try:
                copied, last = 0, None
                while waiting and copied < PUT_SLICE_BYTES:
                    item = waiting.pop()
                    last = records.put(self._record(item))
                    if item["id"] not in self._photos:
                        last = photos.put(self._photo(item))
                        copied += len(item["data"])
                if waiting:
                    last.addEventListener("success", next_slice)
            except Exception:
                tx.abort()  # the caller hears of it from the transaction's abort
                raise

        next_slice = create_proxy(put_slice)
        try:
            put_slice()
            await done
        finally:
            next_slice.destroy()
        self._photos.update(fresh)

    def _item(self, record, photo) -> dict | None:
        out = {key: getattr(record, key, None) for key in FIELDS}
        legacy = getattr(record, "data", None)  # a version-1 record carries its bytes
        source = legacy if legacy is not None else (None if photo is None else photo.data)
        if source is None:
            return None  # its photo is gone (deleted by another tab): nothing to show or train
        out["data"] = source.to_bytes()
        if legacy is None:
            self._photos.add(out["id"])
        return out

    async def get_item(self, item_id: str) -> dict | None:
        tx, _ = self._tx(["items", "photos"], "readonly")
        record = _wait(tx.objectStore("items").get(item_id), "success")
        photo = _wait(tx.objectStore("photos").get(item_id), "success")
        record, photo = await record, await photo
        return None if record is None else self._item(record, photo)

    async def items(self) -> list[dict]:
        tx, _ = self._tx(["items", "photos"], "readonly")
        records = _wait(tx.objectStore("items").getAll(), "success")
        photos = _wait(tx.objectStore("photos").getAll(), "success")
        records, photos = await records, await photos
        by_id = {str(photo.id): photo for photo in photos}
        out = (self._item(r, by_id.get(str(r.id))) for r in records)
        return [item for item in out if item is not None]

    async def _in_both(self, op: str, *args) -> None:
        """``op(*args)`` on a record and its photo, in one transaction."""
        tx, _ = self._tx(["items", "photos"], "readwrite")
        done = _wait(tx, "complete", value=lambda t: None)
        for store in ("items", "photos"):
            getattr(tx.objectStore(store), op)(*args)
        await done

    async def delete_item(self, item_id: str) -> None:
        await self._in_both("delete", item_id)
        self._photos.discard(item_id)

    async def clear_items(self) -> None:
        await self._in_both("clear")
        self._photos.clear()

    # --- meta -------------------------------------------------------------------------
    async def get_meta(self, key: str):
        record = await self._read("meta", "get", key)
        if record is None:
            return None
        return record.value.to_bytes() if record.kind == "bytes" else json.loads(record.value)

    async def set_meta(self, key: str, value) -> None:
        await self.set_metas({key: value})

    async def set_metas(self, values: dict, durable: bool = True) -> None:
        """Puts and deletes in one transaction: all or none."""
        import js

        calls = []
        for key, value in values.items():  # every record made first: a bad value raises here
            if value is None:
                calls.append(("delete", key))
                continue
            record = js.Object.new()
            record.key = key
            if isinstance(value, (bytes, bytearray)):
                record.kind, record.value = "bytes", uint8array(value)
            else:
                record.kind, record.value = "json", json.dumps(value)
            calls.append(("put", record))
        await self._write("meta", calls, durable)
