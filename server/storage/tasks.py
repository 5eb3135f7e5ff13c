"""The ``tasks`` table: configuration, join code and bundle status of each task."""
from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass

from ..client_wheel import extension_dist, wheel_name
from ..db import Database


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
                "training": {k: c.get(k, default) for k, default in (
                    ("batch_size", None), ("local_epochs", None), ("min_labelled", None), ("lr", None),
                    ("update_encoding", "f32"))},
                "study": ({"enabled": True, "notice": c["study_notice"]} if c.get("user_study")
                          else {"enabled": False})}

    def admin(self) -> dict:
        return {"id": self.id, "title": self.title, "config": self.config, "join_code": self.join_code,
                "bundle_status": self.bundle_status, "bundle_error": self.bundle_error,
                "created": self.created}


def new_join_code() -> str:
    return secrets.token_hex(4).upper()


class TasksTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _task(row) -> Task:
        return Task(row["id"], row["title"], json.loads(row["config"]), row["join_code"],
                    row["bundle_status"], row["bundle_error"], row["bundle_sha256"], row["created"])

    def all(self) -> list[Task]:
        return [self._task(r) for r in self.db.connect().execute("SELECT * FROM tasks ORDER BY created")]

    def get(self, task_id: str) -> Task | None:
        row = self.db.connect().execute("SELECT * FROM tasks WHERE id=?", (task_id,)).fetchone()
        return self._task(row) if row else None

    def by_join_code(self, code: str) -> Task | None:
        row = self.db.connect().execute("SELECT * FROM tasks WHERE join_code=?", (code,)).fetchone()
        return self._task(row) if row else None

    def insert(self, title: str, config: dict) -> str:
        task_id = uuid.uuid4().hex[:12]
        self.db.connect().execute(
            "INSERT INTO tasks(id, title, config, join_code, bundle_status, created) VALUES(?,?,?,?,?,?)",
            (task_id, title, json.dumps(config), new_join_code(), "pending", time.time()))
        return task_id

    def set_title_and_config(self, task_id: str, title: str, config: dict) -> None:
        self.db.connect().execute("UPDATE tasks SET title=?, config=? WHERE id=?",
                                  (title, json.dumps(config), task_id))

    def set_bundle_status(self, task_id: str, status: str, error: str | None = None, conn=None) -> None:
        (conn or self.db.connect()).execute("UPDATE tasks SET bundle_status=?, bundle_error=? WHERE id=?",
                                            (status, error, task_id))

    def set_bundle_ready(self, task_id: str, bundle_sha: str, conn=None) -> None:
        (conn or self.db.connect()).execute(
            "UPDATE tasks SET bundle_status='ready', bundle_error=NULL, bundle_sha256=? WHERE id=?",
            (bundle_sha, task_id))

    def rotate_join_code(self, task_id: str) -> None:
        self.db.connect().execute("UPDATE tasks SET join_code=? WHERE id=?", (new_join_code(), task_id))
