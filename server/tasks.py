"""Tasks: their configuration, their bundle, and their history of global versions."""
from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export import BundleError, build_bundle, load_manifest
from export.bundle import validate_args

from .db import Database
from .errors import NotFound
from .paramstore import ParamStore

DEFAULT_CONFIG = {
    "model": "digits_cnn",
    "train_blocks": 0,
    "lr": 0.01,
    "batch_size": 32,
    "local_epochs": 1,
    "min_labelled": 10,
    "max_staleness": 50,
    "aggregator": {"name": "fedasync", "alpha": 0.6, "staleness": "polynomial", "a": 0.5},
}

DEMO_TASK = {
    "title": "Handwritten digits (demo)",
    "config": DEFAULT_CONFIG | {"classes": [str(d) for d in range(10)]},
}


@dataclass
class Task:
    id: str
    title: str
    config: dict
    join_code: str
    bundle_status: str
    bundle_error: str | None

    def public(self) -> dict:
        """What a participant may see."""
        return {"id": self.id, "title": self.title, "classes": self.config["classes"],
                "model": self.config["model"], "bundle_status": self.bundle_status,
                "training": {k: self.config[k] for k in ("batch_size", "local_epochs", "min_labelled")}}


class TaskStore:
    def __init__(self, db: Database, data_dir: Path) -> None:
        self.db = db
        self.bundles = data_dir / "bundles"
        self.params = ParamStore(data_dir / "params")
        self._build_lock = threading.Lock()

    def _row_to_task(self, row) -> Task:
        return Task(row["id"], row["title"], json.loads(row["config"]), row["join_code"],
                    row["bundle_status"], row["bundle_error"])

    def list(self) -> list[Task]:
        rows = self.db.connect().execute("SELECT * FROM tasks ORDER BY created").fetchall()
        return [self._row_to_task(r) for r in rows]

    def get(self, task_id: str) -> Task:
        row = self.db.connect().execute("SELECT * FROM tasks WHERE id=?", (task_id,)).fetchone()
        if row is None:
            raise NotFound(f"no task {task_id!r}")
        return self._row_to_task(row)

    def create(self, title: str, config: dict) -> Task:
        """Validate and record a task; its bundle is built by :meth:`build_bundle`."""
        config = DEFAULT_CONFIG | config
        validate_args(config["model"], config.get("classes", []), config["lr"], config["train_blocks"])
        task_id = uuid.uuid4().hex[:12]
        self.db.connect().execute(
            "INSERT INTO tasks(id, title, config, join_code, bundle_status, created) VALUES(?,?,?,?,?,?)",
            (task_id, title, json.dumps(config), secrets.token_hex(3).upper(), "pending", time.time()))
        return self.get(task_id)

    def bundle_dir(self, task_id: str) -> Path:
        return self.bundles / task_id

    def build_bundle(self, task_id: str) -> None:
        """Build the task's bundle and record version 0 from its initial parameters."""
        task = self.get(task_id)
        conn = self.db.connect()
        conn.execute("UPDATE tasks SET bundle_status='building', bundle_error=NULL WHERE id=?", (task_id,))
        try:
            with self._build_lock:  # one export at a time: they are CPU-bound
                c = task.config
                build_bundle(c["model"], c["classes"], self.bundle_dir(task_id), lr=c["lr"],
                             train_blocks=c["train_blocks"], overwrite=True)
            initial = np.fromfile(self.bundle_dir(task_id) / "parameters.f32", dtype="<f4")
            sha = self.params.put(initial)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM versions WHERE task_id=?", (task_id,))
            conn.execute("INSERT INTO versions(task_id, version, params_sha256, created) VALUES(?,?,?,?)",
                         (task_id, 0, sha, time.time()))
            conn.execute("UPDATE tasks SET bundle_status='ready' WHERE id=?", (task_id,))
            conn.execute("COMMIT")
        except (BundleError, OSError, RuntimeError) as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.execute("UPDATE tasks SET bundle_status='failed', bundle_error=? WHERE id=?", (str(exc), task_id))

    def manifest(self, task_id: str) -> dict:
        task = self.get(task_id)
        if task.bundle_status != "ready":
            raise NotFound(f"the bundle of task {task_id} is {task.bundle_status}", task.bundle_error)
        return load_manifest(self.bundle_dir(task_id))

    def current_version(self, task_id: str) -> tuple[int, str]:
        row = self.db.connect().execute(
            "SELECT version, params_sha256 FROM versions WHERE task_id=? ORDER BY version DESC LIMIT 1",
            (task_id,)).fetchone()
        if row is None:
            raise NotFound(f"task {task_id} has no global model yet")
        return row["version"], row["params_sha256"]

    def ensure_demo(self) -> Task:
        """The embedded default: one ready digits task, created on first start."""
        tasks = self.list()
        task = tasks[0] if tasks else self.create(DEMO_TASK["title"], DEMO_TASK["config"])
        if task.bundle_status != "ready" or not (self.bundle_dir(task.id) / "manifest.json").exists():
            self.build_bundle(task.id)
        return self.get(task.id)
