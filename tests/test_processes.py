"""Several `webfl run` processes sharing one PostgreSQL (a throwaway cluster): they serve one
task together, exactly one runs the background work, and another takes over when it dies."""
from __future__ import annotations

import os
import time
import urllib.request
import json

import numpy as np
import psycopg
import pytest

from live import LiveServer
from loadgen import MECHANICS_ONLY, reconcile, run_load, summary


def _health(server) -> dict:
    with urllib.request.urlopen(f"{server.url}/api/health", timeout=10) as r:
        return json.load(r)


def _pair(tmp_path, pg_url) -> tuple[LiveServer, LiveServer]:
    token = "admin-" + os.urandom(8).hex()
    env = {"WEBFL_DATABASE_URL": pg_url}
    a = LiveServer(tmp_path / "a", env=env, admin_token=token)
    b = LiveServer(tmp_path / "b", env=env, admin_token=token)
    return a, b


def test_two_processes_serve_one_task_and_reconcile_every_acknowledgement(tmp_path, pg_url):
    a, b = _pair(tmp_path, pg_url)
    try:
        assert {_health(a)["storage"], _health(b)["storage"]} == {"postgresql"}
        assert sorted([_health(a)["runs_background"], _health(b)["runs_background"]]) == [False, True]
        task = a.create_task("two", classes=[str(d) for d in range(10)], max_staleness=100_000,
                             keep_versions=100_001, **MECHANICS_ONLY)
        # what one process built, the other serves byte for byte
        joined = b.api("POST", "/api/join", {"code": task["join_code"]})
        manifest_a = a.api("GET", f"/api/tasks/{task['id']}/manifest", token=joined["token"])
        manifest_b = b.api("GET", f"/api/tasks/{task['id']}/manifest", token=joined["token"])
        assert manifest_a == manifest_b
        result = run_load([a, b], task, clients=16, seconds=8)
        problems = reconcile(a, task, result)
        print("\ntwo processes: " + summary(result, problems))
        assert result.errors == [] and problems == []
        assert len(result.acks) > 16
        # both processes merged updates, one at a time, in one contiguous history
        with psycopg.connect(pg_url) as conn:
            versions = [v for (v,) in conn.execute(
                "SELECT version FROM versions WHERE task_id=%s ORDER BY version", (task["id"],))]
        assert versions == list(range(len(result.acks) + 1))
    finally:
        a.stop()
        b.stop()


def test_background_work_moves_to_a_survivor_when_its_process_dies(tmp_path, pg_url):
    a, b = _pair(tmp_path, pg_url)
    try:
        leader, survivor = (a, b) if _health(a)["runs_background"] else (b, a)
        # a FedAvg round that only the round-deadline ticker can close
        task = survivor.create_task("deadline", classes=[str(d) for d in range(10)], **MECHANICS_ONLY,
                                    aggregator={"name": "fedavg", "min_clients": 3, "deadline_seconds": 2})
        leader.kill()
        joined = survivor.api("POST", "/api/join", {"code": task["join_code"]})
        req = urllib.request.Request(f"{survivor.url}/api/tasks/{task['id']}/model",
                                     headers={"Authorization": f"Bearer {joined['token']}"})
        with urllib.request.urlopen(req) as r:
            x = np.frombuffer(r.read(), "<f4")
        req = urllib.request.Request(
            f"{survivor.url}/api/tasks/{task['id']}/updates", data=(x + 0.01).astype("<f4").tobytes(),
            method="POST", headers={"Authorization": f"Bearer {joined['token']}", "X-WebFL-Base-Version": "0",
                                    "X-WebFL-Samples": "10", "Idempotency-Key": "one",
                                    "Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req) as r:
            assert json.load(r)["status"] == "buffered"
        deadline = time.monotonic() + 30
        while survivor.api("GET", f"/api/tasks/{task['id']}/metrics")["current_version"] < 1:
            assert time.monotonic() < deadline, survivor.log()[-3000:]
            time.sleep(0.5)
        assert _health(survivor)["runs_background"]
        assert "now runs the background work" in survivor.log()
    finally:
        a.stop()
        b.stop()
