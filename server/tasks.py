"""Tasks: configuration, bundle builds, participants, and the history of global versions."""
from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export import build_bundle, load_manifest

from . import taskconfig
from .auth import hash_token, new_token
from .client_wheel import extension_dist, wheel_name
from .db import Database
from .errors import APIError, Conflict, NotFound
from .locks import TaskLocks
from .paramstore import ParamStore

DEMO_TASK = {"title": "Handwritten digits (demo)", "config": {"classes": [str(d) for d in range(10)]}}


@dataclass
class Task:
    id: str
    title: str
    config: dict
    join_code: str
    bundle_status: str
    bundle_error: str | None
    bundle_sha256: str | None
    created: float

    def public(self) -> dict:
        """What a participant may see."""
        c = self.config
        return {"id": self.id, "title": self.title, "classes": c["classes"], "model": c["model"],
                "bundle_status": self.bundle_status,
                "extensions": [e | {"url": f"/extensions/{wheel_name(extension_dist(e['name']))}"}
                               for e in c.get("extensions", [])],
                "training": {k: c[k] for k in ("batch_size", "local_epochs", "min_labelled", "lr")}}

    def admin(self) -> dict:
        return {"id": self.id, "title": self.title, "config": self.config, "join_code": self.join_code,
                "bundle_status": self.bundle_status, "bundle_error": self.bundle_error,
                "created": self.created}


@dataclass
class Client:
    id: str
    task_id: str
    name: str
    blocked: bool = False


@dataclass
class Version:
    version: int
    params_sha256: str
    bundle_sha256: str
    created: float
    kind: str
    params_kept: bool


class TaskStore:
    """Owns the tasks, clients and versions tables and the bundle directories."""

    def __init__(self, db: Database, data_dir: Path, params: ParamStore, locks: TaskLocks,
                 extensions_dir: Path | None = None) -> None:
        self.db = db
        self.locks = locks
        self.extensions_dir = extensions_dir
        self.bundles = data_dir / "bundles"
        self.params = params
        # One export at a time: they are CPU-bound and the machine may have 2 cores.
        self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bundle-build")
        self._builds: dict[str, Future] = {}
        self._lock = threading.Lock()

    # --- tasks ---------------------------------------------------------------------
    @staticmethod
    def _task(row) -> Task:
        return Task(row["id"], row["title"], json.loads(row["config"]), row["join_code"],
                    row["bundle_status"], row["bundle_error"], row["bundle_sha256"], row["created"])

    def list(self) -> list[Task]:
        rows = self.db.connect().execute("SELECT * FROM tasks ORDER BY created").fetchall()
        return [self._task(r) for r in rows]

    def get(self, task_id: str) -> Task:
        row = self.db.connect().execute("SELECT * FROM tasks WHERE id=?", (task_id,)).fetchone()
        if row is None:
            raise NotFound(f"no task {task_id!r}")
        return self._task(row)

    def by_join_code(self, code: str) -> Task:
        row = self.db.connect().execute("SELECT * FROM tasks WHERE join_code=?", (code.strip().upper(),)).fetchone()
        if row is None:
            raise NotFound("no task has this join code", "check the code or ask the organiser for a new link")
        return self._task(row)

    def create(self, title: str, config: dict, build: bool = True) -> Task:
        """Validate and record a task, then build its bundle in the background."""
        config = taskconfig.validate(config, extensions_dir=self.extensions_dir)
        task_id = _insert_task(self.db, title, config)
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
        self.db.connect().execute("UPDATE tasks SET title=?, config=? WHERE id=?",
                                  (title if title is not None else task.title,
                                   json.dumps(config), task_id))
        if rebuild:
            self.start_build(task_id)
        return self.get(task_id)

    # --- bundles -------------------------------------------------------------------
    def bundle_dir(self, task_id: str) -> Path:
        return self.bundles / task_id

    def start_build(self, task_id: str) -> Future:
        self.db.connect().execute(
            "UPDATE tasks SET bundle_status='pending', bundle_error=NULL WHERE id=?", (task_id,))
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
        """Build the bundle next to the live one, then switch over and add a version."""
        conn = self.db.connect()
        task = self.get(task_id)
        conn.execute("UPDATE tasks SET bundle_status='building' WHERE id=?", (task_id,))
        c = task.config
        staging = self.bundles / f"{task_id}.next"
        try:
            manifest = build_bundle(c["model"], c["classes"], staging, lr=c["lr"],
                                    train_blocks=c["train_blocks"], overwrite=True)
            initial = np.fromfile(staging / manifest["initial_parameters"], dtype="<f4")
            bundle_sha = hashlib.sha256((staging / "manifest.json").read_bytes()).hexdigest()
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
            conn.execute("UPDATE tasks SET bundle_status='failed', bundle_error=? WHERE id=?",
                         (f"{type(exc).__name__}: {exc}", task_id))

    def _switch_lineage(self, task_id: str, initial: np.ndarray, bundle_sha: str) -> None:
        """A new initial version for the new bundle (caller holds the task's lock)."""
        with self.params.lock, self.db.transaction() as tx:
            sha = self.params.put(initial)
            row = tx.execute("SELECT MAX(version) AS v FROM versions WHERE task_id=?", (task_id,)).fetchone()
            version = 0 if row["v"] is None else row["v"] + 1
            tx.execute("INSERT INTO versions(task_id, version, params_sha256, bundle_sha256, created, kind) "
                       "VALUES(?,?,?,?,?,'initial')", (task_id, version, sha, bundle_sha, time.time()))
            # Updates waiting for the old bundle can no longer be merged.
            tx.execute("UPDATE updates SET status='discarded' WHERE task_id=? AND status='pending'", (task_id,))
            tx.execute("UPDATE tasks SET bundle_status='ready', bundle_sha256=? WHERE id=?", (bundle_sha, task_id))

    def manifest(self, task_id: str) -> dict:
        task = self.get(task_id)
        if task.bundle_status != "ready" and not (self.bundle_dir(task_id) / "manifest.json").exists():
            raise NotFound(f"the model of this task is not ready yet ({task.bundle_status})", task.bundle_error)
        return load_manifest(self.bundle_dir(task_id))

    # --- participants ----------------------------------------------------------------
    def join(self, code: str, name: str = "") -> tuple[Client, str, Task]:
        """Register a participant; the token is returned once and stored as a hash."""
        task = self.by_join_code(code)
        client_id = uuid.uuid4().hex[:12]
        token = new_token()
        name = (name or "").strip()[:80] or f"participant-{client_id[:4]}"
        self.db.connect().execute(
            "INSERT INTO clients(id, task_id, token_sha256, name, joined) VALUES(?,?,?,?,?)",
            (client_id, task.id, hash_token(token), name, time.time()))
        return Client(client_id, task.id, name), token, task

    def client_by_token(self, token: str) -> Client | None:
        row = self.db.connect().execute(
            "SELECT id, task_id, name, blocked FROM clients WHERE token_sha256=?", (hash_token(token),)).fetchone()
        return Client(row["id"], row["task_id"], row["name"], row["blocked"] is not None) if row else None

    def clients(self, task_id: str) -> list[dict]:
        """Participants with what they contributed: updates by outcome, images claimed, last seen."""
        rows = self.db.connect().execute(
            "SELECT c.id, c.name, c.joined, c.blocked, "
            "COUNT(u.id) FILTER (WHERE u.status='applied') AS updates, "
            "COUNT(u.id) FILTER (WHERE u.status='pending') AS pending, "
            "COUNT(u.id) FILTER (WHERE u.status='discarded') AS discarded, "
            "COUNT(u.id) FILTER (WHERE u.status='quarantined') AS quarantined, "
            "COALESCE(SUM(u.num_samples) FILTER (WHERE u.status='applied'), 0) AS samples_claimed, "
            "MAX(u.received) AS last_update "
            "FROM clients c LEFT JOIN updates u ON u.client_id = c.id "
            "WHERE c.task_id=? GROUP BY c.id ORDER BY c.joined", (task_id,)).fetchall()
        return [dict(r) for r in rows]

    def block(self, task_id: str, client_id: str) -> dict:
        """Block a participant: its token stops working at once and its pending updates are
        dropped (under the task's lock, so none of them is being merged meanwhile)."""
        with self.locks(task_id), self.db.transaction() as tx:
            row = tx.execute("SELECT blocked FROM clients WHERE id=? AND task_id=?", (client_id, task_id)).fetchone()
            if row is None:
                raise NotFound(f"this task has no participant {client_id!r}")
            if row["blocked"] is None:
                tx.execute("UPDATE clients SET blocked=? WHERE id=?", (time.time(), client_id))
            dropped = tx.execute("UPDATE updates SET status='discarded', error='participant blocked' "
                                 "WHERE client_id=? AND status='pending'", (client_id,)).rowcount
        return {"client_id": client_id, "blocked": True, "pending_updates_dropped": dropped}

    def rotate_join_code(self, task_id: str) -> Task:
        """A new join code; the old one stops working (members keep their tokens)."""
        self.get(task_id)
        self.db.connect().execute("UPDATE tasks SET join_code=? WHERE id=?", (secrets.token_hex(4).upper(), task_id))
        return self.get(task_id)

    # --- versions ------------------------------------------------------------------
    @staticmethod
    def _version(row) -> Version:
        return Version(row["version"], row["params_sha256"], row["bundle_sha256"], row["created"],
                       row["kind"], bool(row["params_kept"]))

    def current_version(self, task_id: str, conn=None) -> Version:
        row = (conn or self.db.connect()).execute(
            "SELECT * FROM versions WHERE task_id=? ORDER BY version DESC LIMIT 1", (task_id,)).fetchone()
        if row is None:
            raise NotFound("this task has no global model yet", "its bundle is still being built")
        return self._version(row)

    def version(self, task_id: str, version: int, conn=None) -> Version | None:
        row = (conn or self.db.connect()).execute(
            "SELECT * FROM versions WHERE task_id=? AND version=?", (task_id, version)).fetchone()
        return self._version(row) if row else None

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
        """After a restart, finish builds that were interrupted."""
        for task in self.list():
            if task.bundle_status in ("pending", "building"):
                self.start_build(task.id)

    def close(self) -> None:
        self._builder.shutdown(wait=True)


def _insert_task(db: Database, title: str, config: dict) -> str:
    task_id = uuid.uuid4().hex[:12]
    db.connect().execute(
        "INSERT INTO tasks(id, title, config, join_code, bundle_status, created) VALUES(?,?,?,?,?,?)",
        (task_id, title, json.dumps(config), secrets.token_hex(4).upper(), "pending", time.time()))
    return task_id


def demo_task_row(db: Database) -> dict:
    """The embedded default: the first task, or a new digits demo task (its bundle is built
    by the serving process's background work, like any pending build)."""
    conn = db.connect()
    row = conn.execute("SELECT * FROM tasks ORDER BY created LIMIT 1").fetchone()
    if row is None:
        _insert_task(db, DEMO_TASK["title"], taskconfig.validate(DEMO_TASK["config"]))
        row = conn.execute("SELECT * FROM tasks ORDER BY created LIMIT 1").fetchone()
    return dict(row)
