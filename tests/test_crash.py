"""Crash safety: SIGKILL the server at random moments while updates are being handled,
20 times, and check that nothing acknowledged is lost or applied twice: the embedded
default (one process, SQLite) and two processes sharing one PostgreSQL, one of which is
killed each time while the other keeps serving."""
from __future__ import annotations

import hashlib
import http.client
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
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, http.client.HTTPException):
        return None  # no acknowledgement: the client would retry


def _model(server, joined) -> tuple[int, np.ndarray]:
    req = urllib.request.Request(f"{server.url}/api/tasks/{joined['task_id']}/model",
                                 headers={"Authorization": f"Bearer {joined['token']}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return int(r.headers["X-WebFL-Version"]), np.frombuffer(r.read(), "<f4")


def _hammer(victims: list, clients: list, homes: list, rng: random.Random):
    """20 rounds: every participant posts to its home process as fast as it can until one
    process (``victims`` in turn) is SIGKILLed mid-load, then restarted."""
    acked: dict[str, dict] = {}
    unacked: list[tuple[dict, str, int]] = []
    lock = threading.Lock()
    for crash in range(20):
        stop = threading.Event()
        victim = victims[crash % len(victims)]

        def worker(joined, server, seed):
            local = np.random.default_rng(seed)
            while not stop.is_set():
                try:
                    base, x = _model(server, joined)
                except Exception:
                    if server is victim:
                        return
                    continue
                key = uuid.uuid4().hex
                ack = _post(server, joined, x + local.normal(0, 0.01, x.size).astype(np.float32), base, key)
                with lock:
                    if ack is not None:
                        acked[key] = ack
                    else:
                        unacked.append((joined, key, base))
                if ack is None and server is victim:
                    return

        threads = [threading.Thread(target=worker, args=(c, homes[i], crash * 10 + i))
                   for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.05, 0.6))
        victim.kill()  # SIGKILL, mid-request for some of them
        stop.set()
        for t in threads:
            t.join(15)
        victim.start()
    return acked, unacked


def _verify(query, task_id: str, server, joined: dict, acked: dict, unacked: list) -> int:
    """Reconcile the stored history (``query(sql, params)`` on either backend, ``?``
    placeholders) with what was acknowledged; the number of versions."""
    rows = {r[0]: r for r in query(
        "SELECT idempotency_key, status, applied_version, id FROM updates WHERE task_id=?", (task_id,))}
    versions = [r[0] for r in query("SELECT version FROM versions WHERE task_id=? ORDER BY version", (task_id,))]
    # every acknowledged update is stored once and merged (none left pending after restart)
    assert acked and all(k in rows and rows[k][1] == "applied" for k in acked)
    applied = [r[2] for r in rows.values() if r[1] == "applied"]
    assert len(applied) == len(set(applied))                      # one version per update
    assert versions == list(range(len(versions))) and len(versions) == len(applied) + 1
    for key, ack in acked.items():
        assert rows[key][2] == ack["applied_version"]
    _retry_unacknowledged(server, unacked)
    # the served global model is whole and matches its content address
    version, x = _model(server, joined)
    sha = query("SELECT params_sha256 FROM versions WHERE task_id=? AND version=?", (task_id, version))[0][0]
    assert hashlib.sha256(x.astype("<f4").tobytes()).hexdigest() == sha and x.size == 56714
    assert np.isfinite(x).all()
    return len(versions)


def _retry_unacknowledged(server, unacked) -> None:
    """Retrying what was never acknowledged lands at most once."""
    for joined, key, base in unacked[:10]:
        v, x = _model(server, joined)
        again = _post(server, joined, x, v, key)
        assert again is not None and (again["duplicate"] or again["status"] == "applied")


def test_sigkill_during_updates_loses_nothing_acknowledged(tmp_path):
    server = LiveServer(tmp_path / "srv")
    try:
        task = server.create_task("crash", classes=[str(d) for d in range(10)], max_staleness=10_000, **MECHANICS_ONLY,
                                  keep_versions=10_001)
        clients = [server.api("POST", "/api/join", {"code": task["join_code"]}) for _ in range(4)]
        acked, unacked = _hammer([server], clients, [server] * 4, random.Random(1))
        db = sqlite3.connect(server.data_dir / "webfl.sqlite3")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        versions = _verify(lambda sql, args: db.execute(sql, args).fetchall(), task["id"], server, clients[0],
                           acked, unacked)
        print(f"\n{len(acked)} acknowledged updates across 20 SIGKILLs, {len(unacked)} unacknowledged, "
              f"{versions} versions")
    finally:
        server.stop()


def test_sigkill_one_of_two_postgresql_processes_loses_nothing_acknowledged(tmp_path, pg_url):
    token = "admin-" + uuid.uuid4().hex
    a, b = (LiveServer(tmp_path / name, env={"WEBFL_DATABASE_URL": pg_url}, admin_token=token) for name in "ab")
    try:
        task = a.create_task("crash", classes=[str(d) for d in range(10)], max_staleness=10_000, **MECHANICS_ONLY,
                             keep_versions=10_001)
        clients = [a.api("POST", "/api/join", {"code": task["join_code"]}) for _ in range(4)]
        homes = [a, b, a, b]
        acked, unacked = _hammer([a, b], clients, homes, random.Random(2))
        import psycopg

        with psycopg.connect(pg_url) as db:
            deadline = time.monotonic() + 30  # a killed process's waiting updates: merged by the survivor
            while db.execute("SELECT COUNT(*) FROM updates WHERE task_id=%s AND status='pending'",
                             (task["id"],)).fetchone()[0]:
                assert time.monotonic() < deadline, "acknowledged updates left waiting"
                time.sleep(0.5)
            versions = _verify(lambda sql, args: db.execute(sql.replace("?", "%s"), args).fetchall(), task["id"],
                               b, clients[0], acked, unacked)
        print(f"\ntwo PostgreSQL processes: {len(acked)} acknowledged updates across 20 SIGKILLs (10 of each), "
              f"{len(unacked)} unacknowledged, {versions} versions")
    finally:
        a.stop()
        b.stop()
