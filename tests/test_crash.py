"""Crash safety: SIGKILL the server at random moments while updates are being handled,
20 times, and check that nothing acknowledged is lost or applied twice."""
from __future__ import annotations

import hashlib
import random
import sqlite3
import threading
import time
import urllib.error
import urllib.request
import uuid

import numpy as np

from live import LiveServer
from loadgen import MECHANICS_ONLY


def _post(server, joined, params: np.ndarray, base: int, key: str) -> dict | None:
    req = urllib.request.Request(
        f"{server.url}/api/tasks/{joined['task_id']}/updates", data=params.astype("<f4").tobytes(), method="POST",
        headers={"Authorization": f"Bearer {joined['token']}", "X-WebFL-Base-Version": str(base),
                 "X-WebFL-Samples": "10", "Idempotency-Key": key, "Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            import json

            return json.load(r)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None  # no acknowledgement: the client would retry


def _model(server, joined) -> tuple[int, np.ndarray]:
    req = urllib.request.Request(f"{server.url}/api/tasks/{joined['task_id']}/model",
                                 headers={"Authorization": f"Bearer {joined['token']}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return int(r.headers["X-WebFL-Version"]), np.frombuffer(r.read(), "<f4")


def test_sigkill_during_updates_loses_nothing_acknowledged(tmp_path):
    server = LiveServer(tmp_path / "srv")
    rng = random.Random(1)
    try:
        task = server.create_task("crash", classes=[str(d) for d in range(10)], max_staleness=10_000, **MECHANICS_ONLY,
                                  keep_versions=10_001)
        clients = [server.api("POST", "/api/join", {"code": task["join_code"]}) for _ in range(4)]
        acked: dict[str, dict] = {}
        unacked: list[tuple[dict, str, int]] = []
        lock = threading.Lock()
        for crash in range(20):
            stop = threading.Event()

            def worker(joined, seed):
                local = np.random.default_rng(seed)
                while not stop.is_set():
                    try:
                        base, x = _model(server, joined)
                    except Exception:
                        return
                    key = uuid.uuid4().hex
                    ack = _post(server, joined, x + local.normal(0, 0.01, x.size).astype(np.float32), base, key)
                    with lock:
                        if ack is not None:
                            acked[key] = ack
                        else:
                            unacked.append((joined, key, base))
                    if ack is None:
                        return

            threads = [threading.Thread(target=worker, args=(c, crash * 10 + i)) for i, c in enumerate(clients)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.05, 0.6))
            server.kill()  # SIGKILL, mid-request for some of them
            stop.set()
            for t in threads:
                t.join(15)
            server.start()

        db = sqlite3.connect(server.data_dir / "webfl.sqlite3")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = {r[0]: r for r in db.execute(
            "SELECT idempotency_key, status, applied_version, id FROM updates WHERE task_id=?", (task["id"],))}
        # every acknowledged update is stored once and merged (none left pending after restart)
        assert acked and all(k in rows and rows[k][1] == "applied" for k in acked)
        applied = [r[2] for r in rows.values() if r[1] == "applied"]
        assert len(applied) == len(set(applied))                      # one version per update
        versions = [v for (v,) in db.execute("SELECT version FROM versions WHERE task_id=? ORDER BY version",
                                             (task["id"],))]
        assert versions == list(range(len(versions))) and len(versions) == len(applied) + 1
        for key, ack in acked.items():
            assert rows[key][2] == ack["applied_version"]
        # retrying what was never acknowledged lands at most once
        for joined, key, base in unacked[:10]:
            v, x = _model(server, joined)
            again = _post(server, joined, x, v, key)
            assert again is not None and (again["duplicate"] or again["status"] == "applied")
        # the global model on disk is whole and matches its content address
        version, x = _model(server, clients[0])
        sha = db.execute("SELECT params_sha256 FROM versions WHERE task_id=? AND version=?",
                         (task["id"], version)).fetchone()[0]
        assert hashlib.sha256(x.astype("<f4").tobytes()).hexdigest() == sha and x.size == 56714
        assert np.isfinite(x).all()
        print(f"\n{len(acked)} acknowledged updates across 20 SIGKILLs, {len(unacked)} unacknowledged, "
              f"{len(versions)} versions")
    finally:
        server.stop()
