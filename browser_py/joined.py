"""The tasks this browser has joined, so a participant can switch between them.

Each task keeps its images and membership in its own IndexedDB database (``webfl:TASK:SLOT``);
this short list (``localStorage``, newest first) only says which exist, with their titles
and join codes, so the page can link to them and find a task again without the server
(offline, or after the organiser changed the join code).
"""
from __future__ import annotations

import json
import time

KEY = "webfl:joined"
MAX_TASKS = 50


def _storage():
    import js

    return js.localStorage


def joined() -> list[dict]:
    """``[{id, title, slot, code, seen}]``, most recently opened first."""
    try:
        value = json.loads(str(_storage().getItem(KEY) or "[]"))
    except (ValueError, TypeError):
        return []  # damaged: start a new list rather than break the page
    return [t for t in value if isinstance(t, dict) and isinstance(t.get("id"), str)] if isinstance(value, list) else []


def remember(task_id: str, title: str, slot: str, code: str | None) -> None:
    entries = [t for t in joined() if (t["id"], t.get("slot")) != (task_id, slot)]
    entries.insert(0, {"id": task_id, "title": title, "slot": slot, "code": code, "seen": time.time()})
    _storage().setItem(KEY, json.dumps(entries[:MAX_TASKS]))


def find(task_id: str | None = None, code: str | None = None, slot: str = "default") -> dict | None:
    """A joined task by id or by join code (codes compare case-blind, as the server does)."""
    for t in joined():
        if t.get("slot", "default") != slot:
            continue
        if task_id is not None and t["id"] == task_id:
            return t
        if code is not None and str(t.get("code") or "").upper() == code.strip().upper():
            return t
    return None


def link(entry: dict) -> str:
    slot = entry.get("slot") or "default"
    return f"/?task={entry['id']}" + ("" if slot == "default" else f"&slot={slot}")
