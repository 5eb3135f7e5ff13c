"""One lock per task, shared by everything that changes a task's global model.

Aggregation and bundle rebuilds both take it, so a rebuild's switch to a new lineage can
never interleave with an update being merged into the old one. (Within one process; the
PostgreSQL backend will need row or advisory locks instead.)
"""
from __future__ import annotations

import threading


class TaskLocks:
    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, task_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(task_id, threading.Lock())
