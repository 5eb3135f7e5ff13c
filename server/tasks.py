"""Tasks: configuration, bundle builds, participants, and the history of global versions.

The service: it validates, builds bundles in the background and decides; every row it
reads or writes goes through :mod:`server.storage`.
"""
from __future__ import annotations

import hashlib
import shutil
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from export import build_bundle, load_manifest

from . import taskconfig
from .auth import hash_token, new_token
from .errors import APIError, Conflict, NotFound
from .locks import TaskLocks
from .storage import Client, Storage, Task, Version

DEMO_TASK = {"title": "Handwritten digits (demo)", "config": {"classes": [str(d) for d in range(10)]}}

__all__ = ["Client", "DEMO_TASK", "Task", "TaskStore", "Version", "demo_task_row"]


class TaskStore:
    """Tasks, their participants and versions (through the storage layer), and the bundle
    directories."""

    def __init__(self, storage: Storage, data_dir: Path, locks: TaskLocks,
                 extensions_dir: Path | None = None) -> None:
        self.storage = storage
        self.locks = locks
        self.extensions_dir = extensions_dir
        self.bundles = data_dir / "bundles"
        self.params = storage.params
        # One export at a time: they are CPU-bound and the machine may have 2 cores.
        self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bundle-build")
        self._builds: dict[str, Future] = {}
        self._lock = threading.Lock()

    # --- tasks ---------------------------------------------------------------------
    def list(self) -> list[Task]:
        return self.storage.tasks.all()

    def get(self, task_id: str) -> Task:
        task = self.storage.tasks.get(task_id)
        if task is None:
            raise NotFound(f"no task {task_id[:64]!r}")
        return task

    def by_join_code(self, code: str) -> Task:
        task = self.storage.tasks.by_join_code(code.strip().upper())
        if task is None:
            raise NotFound("no task has this join code", "check the code or ask the organiser for a new link")
        return task

    def create(self, title: str, config: dict, build: bool = True) -> Task:
        """Validate and record a task, then build its bundle in the background."""
        config = taskconfig.validate(config, extensions_dir=self.extensions_dir)
        task_id = self.storage.tasks.insert(title, config)
        if build:
            self.start_build(task_id)
        return self.get(task_id)

    def update(self, task_id: str, title: str | None, changes: dict) -> Task:
        """Edit a task; bundle-shaping changes rebuild the bundle and start a new lineage."""
        task = self.get(task_id)
        config = taskconfig.validate(changes, base=task.config, extensions_dir=self.extensions_dir)
        rebuild = taskconfig.needs_new_bundle(task.config, config)
        if rebuild and task.bundle_status == "building":
            raise Conflict("the bundle is being built; try again when it is done")
        self.storage.tasks.set_title_and_config(task_id, title if title is not None else task.title, config)
        if rebuild:
            self.start_build(task_id)
        return self.get(task_id)

    # --- bundles -------------------------------------------------------------------
    def bundle_dir(self, task_id: str, task: Task | None = None) -> Path:
        """The task's live bundle: its directory under the data dir, or (PostgreSQL) the
        published files unpacked into the local cache (``task``: its row, if already read)."""
        if self.storage.files is None:  # the directory does not depend on the row
            return self.storage.bundle_dir(task_id, None)
        return self.storage.bundle_dir(task_id, (task or self.get(task_id)).bundle_sha256)

    def start_build(self, task_id: str) -> Future:
        self.storage.tasks.set_bundle_status(task_id, "pending")
        return self._submit_build(task_id)

    def _submit_build(self, task_id: str) -> Future:
        with self._lock:
            future = self._builder.submit(self._build, task_id)
            self._builds[task_id] = future
        return future

    def wait_for_build(self, task_id: str, timeout: float | None = None) -> None:
        with self._lock:
            future = self._builds.get(task_id)
        if future is not None:
            future.result(timeout)

    def _build(self, task_id: str) -> None:
        """Build the bundle (one process at a time per task: a lease), then switch over and
        add a version."""
        lease = self.storage.db.try_lease(f"webfl:build:{task_id}")
        if lease is None:
            return  # another process is building it
        try:
            if self.get(task_id).bundle_status in ("pending", "building"):
                self._build_leased(task_id)
        finally:
            lease.release()

    def _build_leased(self, task_id: str) -> None:
        """Build next to the live bundle, publish it, then switch lineage under the task's lock."""
        task = self.get(task_id)
        self.storage.tasks.set_bundle_status(task_id, "building")
        c = task.config
        staging = self.bundles / f"{task_id}.next"
        try:
            manifest = build_bundle(c["model"], c["classes"], staging, lr=c["lr"],
                                    train_blocks=c["train_blocks"], overwrite=True)
            initial = np.fromfile(staging / manifest["initial_parameters"], dtype="<f4")
            bundle_sha = hashlib.sha256((staging / "manifest.json").read_bytes()).hexdigest()
            if self.storage.files is not None:  # shared: every process serves these bytes
                self.storage.files.put_dir(f"bundle/{bundle_sha}", staging)
                with self.locks(task_id):
                    self._switch_lineage(task_id, initial, bundle_sha)
                shutil.rmtree(staging, ignore_errors=True)
                return
            live = self.bundle_dir(task_id)
            old = self.bundles / f"{task_id}.old"
            with self.locks(task_id):  # no update is merged while the lineage switches
                if live.exists():
                    live.rename(old)
                staging.rename(live)
                self._switch_lineage(task_id, initial, bundle_sha)
            if old.exists():
                shutil.rmtree(old, ignore_errors=True)
        except Exception as exc:  # reported on the task, never lost in a thread
            self.storage.tasks.set_bundle_status(task_id, "failed", f"{type(exc).__name__}: {exc}")

    def _switch_lineage(self, task_id: str, initial: np.ndarray, bundle_sha: str) -> None:
        """A new initial version for the new bundle (caller holds the task's lock)."""
        with self.params.lock, self.storage.transaction() as tx:
            sha = self.params.put(initial)
            self.storage.versions.insert(task_id, None, sha, bundle_sha, "initial", tx)
            # Updates waiting for the old bundle can no longer be merged.
            self.storage.updates.discard_waiting_of_task(task_id, "the task's model changed", tx)
            self.storage.tasks.set_bundle_ready(task_id, bundle_sha, tx)

    def manifest(self, task_id: str) -> dict:
        task = self.get(task_id)
        bundle = self.bundle_dir(task_id, task)
        if task.bundle_status != "ready" and not (bundle / "manifest.json").exists():
            raise NotFound(f"the model of this task is not ready yet ({task.bundle_status})", task.bundle_error)
        return load_manifest(bundle)

    # --- participants ----------------------------------------------------------------
    def join(self, code: str, name: str = "") -> tuple[Client, str, Task]:
        """Register a participant; the token is returned once and stored as a hash."""
        task = self.by_join_code(code)
        client_id = uuid.uuid4().hex[:12]
        token = new_token()
        name = display_name(name, client_id)
        self.storage.clients.insert(client_id, task.id, hash_token(token), name)
        return Client(client_id, task.id, name), token, task

    def rename(self, client: Client, name: str) -> str:
        """A participant's new display name (empty: the generated one again)."""
        name = display_name(name, client.id)
        self.storage.clients.rename(client.id, name)
        return name

    def client_by_token(self, token: str) -> Client | None:
        return self.storage.clients.by_token_hash(hash_token(token))

    def clients(self, task_id: str) -> list[dict]:
        """Participants with what they contributed: updates by outcome, images claimed, last seen."""
        return self.storage.clients.contributions(task_id)

    def block(self, task_id: str, client_id: str) -> dict:
        """Block a participant: its token stops working at once and its pending updates are
        dropped (under the task's lock, so none of them is being merged meanwhile)."""
        with self.locks(task_id), self.storage.transaction() as tx:
            if not self.storage.clients.exists(task_id, client_id, tx):
                raise NotFound(f"this task has no participant {client_id[:64]!r}")
            self.storage.clients.block(client_id, tx)
            dropped = self.storage.updates.discard_waiting_of_client(client_id, "participant blocked", tx)
        return {"client_id": client_id, "blocked": True, "pending_updates_dropped": dropped}

    def rotate_join_code(self, task_id: str) -> Task:
        """A new join code; the old one stops working (members keep their tokens)."""
        self.get(task_id)
        self.storage.tasks.rotate_join_code(task_id)
        return self.get(task_id)

    # --- versions ------------------------------------------------------------------
    def current_version(self, task_id: str, conn=None) -> Version:
        v = self.storage.versions.current(task_id, conn)
        if v is None:
            raise NotFound("this task has no global model yet", "its bundle is still being built")
        return v

    def version(self, task_id: str, version: int, conn=None) -> Version | None:
        return self.storage.versions.get(task_id, version, conn)

    def kept_version(self, task_id: str, wanted: int | None) -> Version:
        """The newest version, or version ``wanted`` if its parameters are still kept:
        404 if it never existed, 410 if retention dropped it."""
        if wanted is None:
            return self.current_version(task_id)
        v = self.version(task_id, wanted)
        if v is None:
            raise NotFound(f"no version {wanted}")
        if not v.params_kept:
            raise APIError(f"version {wanted} is no longer kept", status=410)
        return v

    def resume_builds(self) -> None:
        """Finish builds that were interrupted (a restart, or a process that died while
        building): each build runs under a lease, so one still running elsewhere is left be."""
        for task in self.list():
            if task.bundle_status in ("pending", "building"):
                with self._lock:
                    running = self._builds.get(task.id)
                if running is None or running.done():
                    self._submit_build(task.id)

    def close(self) -> None:
        self._builder.shutdown(wait=True)


def demo_task_row(storage: Storage) -> Task:
    """The embedded default: the first task, or a new digits demo task (its bundle is built
    by the serving process's background work, like any pending build)."""
    tasks = storage.tasks.all()
    if tasks:
        return tasks[0]
    task_id = storage.tasks.insert(DEMO_TASK["title"], taskconfig.validate(DEMO_TASK["config"]))
    return storage.tasks.get(task_id)


def display_name(name: str, client_id: str) -> str:
    """The name the organiser sees: the participant's own, else one made from its id."""
    return (name or "").strip()[:80] or f"participant-{client_id[:4]}"
