"""Process roles: the app factory only wires; background work runs in one place; recovery
never keeps the server down; rebuilds and aggregation share the task lock."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from api_helpers import ADMIN, Harness
from experiments.server import ROOT
from live import LiveServer
from server import create_app


def test_create_app_starts_no_thread_and_resumes_nothing(tmp_path):
    h = Harness(tmp_path)
    task = h.create_task(aggregator={"name": "fedbuff", "buffer_size": 5})
    me = h.join(task)
    _, x0 = h.model(task["id"], me["token"])
    h.post_update(me, x0 + 0.01, 0)
    h.background.stop()
    h.ext.db.connect().execute("UPDATE tasks SET bundle_status='pending'")
    before = set(threading.enumerate())
    app = create_app({"DATA_DIR": str(tmp_path), "TICK_SECONDS": 1})
    assert set(threading.enumerate()) - before == set()  # threads of earlier tests may end meanwhile
    conn = app.extensions["webfl"].db.connect()
    assert conn.execute("SELECT bundle_status FROM tasks").fetchone()[0] == "pending"   # no build resumed
    assert conn.execute("SELECT status FROM updates").fetchone()[0] == "pending"         # no recovery ran


def test_recovery_quarantines_what_it_cannot_apply_and_starts_anyway(tmp_path):
    h = Harness(tmp_path)
    task = h.create_task(aggregator={"name": "fedbuff", "buffer_size": 3}, direction_guard=False)
    a, b = h.join(task, "a"), h.join(task, "b")
    _, x0 = h.model(task["id"], a["token"])
    h.post_update(a, x0 + 0.01, 0)
    h.post_update(b, x0 + 0.02, 0)
    conn = h.ext.db.connect()
    broken = conn.execute("SELECT id, params_sha256 FROM updates ORDER BY id LIMIT 1").fetchone()
    h.background.stop()
    (tmp_path / "params" / broken["params_sha256"][:2] / f"{broken['params_sha256']}.f32").unlink()
    restarted = Harness(tmp_path)  # starts: recovery quarantines the row whose file is gone
    rows = {r["id"]: r for r in restarted.ext.db.connect().execute("SELECT id, status, error FROM updates")}
    assert rows[broken["id"]]["status"] == "quarantined" and "FileNotFoundError" in rows[broken["id"]]["error"]
    assert [r["status"] for i, r in rows.items() if i != broken["id"]] == ["pending"]
    listing = restarted.admin("GET", f"/api/admin/tasks/{task['id']}/clients").json
    assert [q["id"] for q in listing["quarantined"]] == [broken["id"]]
    assert restarted.client.get("/api/health").status_code == 200


def test_a_rebuild_switches_lineage_only_under_the_task_lock(tmp_path):
    h = Harness(tmp_path)
    task = h.create_task()
    lock = h.ext.locks(task["id"])
    lock.__enter__()  # as if an update were being merged
    try:
        r = h.admin("PATCH", f"/api/admin/tasks/{task['id']}", json={"config": {"lr": 0.01}})
        assert r.status_code == 200
        deadline = time.monotonic() + 60
        while not (h.ext.tasks.bundles / f"{task['id']}.next" / "manifest.json").exists():
            assert time.monotonic() < deadline, "the new bundle was never staged"
            time.sleep(0.05)
        time.sleep(0.5)
        versions = h.ext.db.connect().execute("SELECT COUNT(*) FROM versions").fetchone()[0]
        assert versions == 1  # staged, but the switch waits for the lock
    finally:
        lock.__exit__(None, None, None)
    h.ext.tasks.wait_for_build(task["id"], 60)
    assert h.ext.db.connect().execute("SELECT MAX(version) FROM versions").fetchone()[0] == 1


def test_reset_admin_token_touches_only_the_database(tmp_path):
    data = tmp_path / "data"
    h = Harness(data)
    h.create_task()
    h.background.stop()
    h.ext.db.connect().execute("UPDATE tasks SET bundle_status='pending'")
    files_before = sorted(str(p.relative_to(data)) for p in data.rglob("*") if "sqlite3" not in p.name)
    env = os.environ | {"WEBFL_DATA_DIR": str(data)}
    out = subprocess.run([sys.executable, "-m", "server.cli", "reset-admin-token"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().rsplit(" ", 1)[-1]
    assert sorted(str(p.relative_to(data)) for p in data.rglob("*") if "sqlite3" not in p.name) == files_before
    again = Harness(data)
    assert again.client.get("/api/admin/tasks", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert again.client.get("/api/admin/tasks", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 401


def _open_database_files(pid: int) -> list[str]:
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return [link for link in links if "webfl.sqlite3" in link]


def test_the_gunicorn_master_runs_no_background_work(tmp_path):
    """Only the worker builds the app: the master holds no database connection once it has
    forked, so no second round ticker, evaluator or bundle builder can run beside the worker's."""
    server = LiveServer(tmp_path / "srv")
    try:
        master = server.proc.pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        assert len(children) == 1
        assert _open_database_files(master) == []
        assert _open_database_files(int(children[0]))  # the worker does the work
        assert server.demo_task()["bundle_status"] == "ready"  # built by the worker
    finally:
        server.stop()
