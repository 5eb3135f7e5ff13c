"""A small harness around the Flask test client: real SQLite files (or a real PostgreSQL
database: ``DATABASE_URL``), real bundles."""
from __future__ import annotations

import json
import uuid

import numpy as np

from server import create_app
from server.auth import ensure_admin_token
from server.background import start as start_background

ADMIN = "admin-token-for-tests"


class Harness:
    def __init__(self, data_dir, **config) -> None:
        self.data_dir = data_dir
        self.config = config
        self.app = create_app({"DATA_DIR": str(data_dir), "TICK_SECONDS": 0} | config)
        self.background = start_background(self.app)
        ensure_admin_token(self.ext.db, ADMIN)
        self.client = self.app.test_client()

    @property
    def ext(self):
        """The app's typed services."""
        return self.app.extensions["webfl"]

    def admin(self, method: str, path: str, headers: dict | None = None, **kwargs):
        headers = {"Authorization": f"Bearer {ADMIN}"} | (headers or {})
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def create_task(self, title: str = "digits", **config) -> dict:
        body = {"title": title, "config": {"classes": [str(d) for d in range(10)]} | config}
        r = self.admin("POST", "/api/admin/tasks", json=body)
        assert r.status_code == 201, r.json
        self.ext.tasks.wait_for_build(r.json["id"])
        task = self.admin("GET", f"/api/admin/tasks/{r.json['id']}").json
        assert task["bundle_status"] == "ready", task
        return task

    def join(self, task: dict, name: str = "") -> dict:
        r = self.client.post("/api/join", json={"code": task["join_code"], "name": name})
        assert r.status_code == 201, r.json
        return r.json

    def model(self, task_id: str, token: str) -> tuple[int, np.ndarray]:
        r = self.client.get(f"/api/tasks/{task_id}/model", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.json
        return int(r.headers["X-WebFL-Version"]), np.frombuffer(r.data, "<f4").copy()

    def post_update(self, joined: dict, params: np.ndarray, base_version: int, samples: int = 10,
                    key: str | None = None, metrics: dict | None = None, headers: dict | None = None,
                    client=None):
        h = {"Authorization": f"Bearer {joined['token']}", "X-WebFL-Base-Version": str(base_version),
             "X-WebFL-Samples": str(samples), "Idempotency-Key": key or uuid.uuid4().hex,
             "X-WebFL-Metrics": json.dumps(metrics or {"loss": 0.5}),
             "Content-Type": "application/octet-stream"} | (headers or {})
        body = params.astype("<f4").tobytes() if isinstance(params, np.ndarray) else params
        return (client or self.client).post(f"/api/tasks/{joined['task_id']}/updates", data=body, headers=h)

    def state(self) -> tuple:
        """Everything a refused request must leave unchanged (rows and stored vectors)."""
        storage = self.ext.storage
        rows = tuple(tuple(tuple(r.values()) for r in storage.rows(t))
                     for t in ("versions", "updates", "tasks", "evaluations", "clients", "settings"))
        return rows, tuple(sorted(storage.params.shas()))

    def restart(self) -> "Harness":
        """The same instance served by a new app, after this one stopped (as a new process
        would find it)."""
        self.close()
        return Harness(self.data_dir, **self.config)

    def close(self) -> None:
        self.background.stop()
        self.ext.tasks.close()
