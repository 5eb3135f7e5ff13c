"""Locks that order work: one per task, shared by everything that changes a task's global
model, and leases that let exactly one process run a background job.

Aggregation and bundle rebuilds both take the task's lock, so a rebuild's switch to a new
lineage can never interleave with an update being merged into the old one. The database
backend provides the locks: process-local ones for the embedded SQLite default (one
process), PostgreSQL advisory locks otherwise (any number of processes).
"""
from __future__ import annotations

import contextlib
import threading
from typing import ContextManager, Iterator, Protocol


class Lockable(Protocol):
    def lock(self, name: str) -> ContextManager[None]: ...


class TaskLocks:
    """``with locks(task_id):`` holds the task's lock."""

    def __init__(self, db: Lockable) -> None:
        self._db = db

    def __call__(self, task_id: str) -> ContextManager[None]:
        return self._db.lock(f"webfl:task:{task_id}")


class LocalLease:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock

    def release(self) -> None:
        self._lock.release()


class LocalLocks:
    """Named locks and leases within one process (the embedded backend's)."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _named(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        with self._named(name):
            yield

    def try_lease(self, name: str) -> LocalLease | None:
        lock = self._named(name)
        return LocalLease(lock) if lock.acquire(blocking=False) else None
