"""User-study recording on the participant's side, only after the participant agreed.

Each action becomes a small event (an id, the time, the action, the global version the page
holds and a few bounded values, never pixels). It is written to the participant's store
first (IndexedDB in the browser), then sent in batches; the server stores an event id once,
so a batch resent after a lost answer or a reload is harmless. Declining, or withdrawing
later, empties the outbox and the server deletes what it had.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Callable

from .protocol import FLClient, ServerRefused, ServerUnavailable

OUTBOX = "study_outbox"  # the numbers of the chunks not yet sent; each chunk is its own key
CHUNK = 100               # events per chunk and per request: each action rewrites one small chunk


class StudyLog:
    def __init__(self, client: FLClient, store, version: Callable[[], int | None] = lambda: None) -> None:
        self.client, self.store, self.version = client, store, version
        self.enabled = False
        self.agreed: bool | None = None  # None: not answered yet
        self.notice = ""
        self.chunks: dict[int, list[dict]] = {}  # chunk number -> events, oldest first
        self._open: int | None = None  # the chunk new events go to (None: start a new one)
        self.sent = 0
        self._flushing = asyncio.Lock()

    def _path(self) -> str:
        return f"/api/tasks/{self.client.task_id}/study/consent"

    async def load(self, task: dict) -> "StudyLog":
        """Read the task's study setting and this participant's answer (and any unsent events)."""
        self.enabled = bool(task.get("study", {}).get("enabled"))
        if self.enabled:
            answer = (await self.client.call("GET", self._path())).json()
            self.agreed, self.notice = answer["agreed"], answer["notice"]
            for n in await self.store.get_meta(OUTBOX) or []:
                self.chunks[int(n)] = list(await self.store.get_meta(f"{OUTBOX}:{n}") or [])
        return self

    @property
    def pending(self) -> int:
        return sum(len(c) for c in self.chunks.values())

    @property
    def needs_answer(self) -> bool:
        return self.enabled and self.agreed is None

    @property
    def recording(self) -> bool:
        return self.enabled and self.agreed is True

    async def answer(self, agreed: bool) -> None:
        await self.client.call("POST", self._path(), json.dumps({"agreed": agreed}).encode(),
                               {"Content-Type": "application/json"})
        self.agreed = agreed
        if not agreed:
            await self._forget()

    async def _forget(self) -> None:
        for n in list(self.chunks):
            await self._drop(n)

    async def _drop(self, n: int) -> None:
        self.chunks.pop(n, None)
        if self._open == n:
            self._open = None
        await self.store.set_metas({f"{OUTBOX}:{n}": None, OUTBOX: sorted(self.chunks) or None})

    async def record(self, action: str, **detail) -> None:
        """Keep one event durably (sent by :meth:`flush`); nothing unless the participant agreed."""
        if not self.recording:
            return
        event = {"id": uuid.uuid4().hex, "at": round(time.time(), 3), "action": action,
                 "version": self.version(), "detail": {k: v for k, v in detail.items() if v is not None}}
        kept = {}
        if self._open is None or len(self.chunks.get(self._open, [])) >= CHUNK:
            self._open = max(self.chunks, default=-1) + 1
            self.chunks[self._open] = []
            kept[OUTBOX] = sorted(self.chunks)
        self.chunks[self._open].append(event)
        kept[f"{OUTBOX}:{self._open}"] = self.chunks[self._open]
        await self.store.set_metas(kept)  # a new chunk and its index together

    async def flush(self) -> int:
        """Send what is pending, oldest first; returns how many the server took. Network
        trouble keeps the events for the next flush; a refusal (the participant's answer
        changed elsewhere, or the study ended) drops them."""
        if not self.chunks:
            return 0
        sent = 0
        async with self._flushing:
            self._open = None  # what is recorded while sending goes to a new chunk
            for n in sorted(self.chunks):
                if not self.recording:
                    break
                batch = self.chunks[n]
                try:
                    if batch:
                        await self.client.call("POST", f"/api/tasks/{self.client.task_id}/study/events",
                                               json.dumps({"events": batch}).encode(),
                                               {"Content-Type": "application/json"}, retry=False)
                except ServerUnavailable:
                    break
                except ServerRefused as exc:
                    if exc.status in (403, 409):
                        self.agreed = False
                        await self._forget()
                        break
                    # a malformed event (a bug): this chunk can never be taken; drop it, keep the rest
                await self._drop(n)
                sent += len(batch)
        self.sent += sent
        return sent
