"""``webfl copy-instance``: an embedded instance moved into PostgreSQL and back again,
nothing lost or changed on the way, and the copy serves on."""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np

from api_helpers import ADMIN, Harness
from server.config import ROOT
from server.storage import TABLES

UNBOUNDED = {"max_change_ratio": None, "max_change_vs_recent": None, "direction_guard": False,
             "max_updates_per_minute": 10_000}


def _copy(source: str, destination: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server.cli", "copy-instance", source, destination],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def _snapshot(h: Harness) -> dict:
    """Every row, every stored vector and every bundle file and validation set, by content."""
    storage = h.ext.storage
    tasks = storage.rows("tasks")
    bundles = {t["id"]: {p.name: p.read_bytes() for p in h.ext.tasks.bundle_dir(t["id"]).iterdir()} for t in tasks}
    validation = {t["id"]: h.ext.evaluator.path(t["id"]).read_bytes() for t in tasks
                  if h.ext.evaluator.has_validation(t["id"])}
    vectors = {sha: storage.params.get_bytes(sha) for sha in storage.referenced_params()}
    return {"rows": {t: storage.rows(t) for t, _ in TABLES}, "vectors": vectors, "bundles": bundles,
            "validation": validation}


def test_embedded_to_postgresql_and_back(tmp_path, pg_cluster):
    from export.datasets import sklearn_digits

    h = Harness(tmp_path / "embedded")
    task = h.create_task(**UNBOUNDED)
    data = sklearn_digits()
    buf = io.BytesIO()
    np.savez(buf, images=data.images[:100], labels=data.labels[:100])
    assert h.admin("PUT", f"/api/admin/tasks/{task['id']}/validation", data=buf.getvalue()).status_code == 200
    alice, bob = h.join(task, "alice"), h.join(task, "bob")
    for who in (alice, bob, alice):
        v, x = h.model(task["id"], who["token"])
        assert h.post_update(who, x + 0.01, v).status_code == 201
    assert h.ext.evaluator.wait_idle(60)
    h.admin("POST", f"/api/admin/tasks/{task['id']}/clients/{bob['client_id']}/block")
    before = _snapshot(h)
    assert before["rows"]["evaluations"] and before["validation"]
    h.close()

    url = pg_cluster.new_database()
    done = _copy(str(tmp_path / "embedded"), url)
    assert done.returncode == 0, done.stderr
    assert "tasks 1, clients 2, versions 4, updates 3" in done.stdout

    pg = Harness(tmp_path / "pg-cache", DATABASE_URL=url)
    assert _snapshot(pg) == before
    # the copy serves: the same model, the same tokens, and new work continues the history
    v, x = pg.model(task["id"], alice["token"])
    assert v == 3 and np.array_equal(x, h.ext.params.get(before["rows"]["versions"][-1]["params_sha256"]))
    r = pg.post_update(alice, x + 0.01, v)
    assert r.status_code == 201 and r.json["applied_version"] == 4
    assert r.json["update_id"] > max(u["id"] for u in before["rows"]["updates"])
    assert pg.post_update(bob, x, v).status_code == 403  # still blocked
    assert pg.admin("GET", "/api/admin/tasks").status_code == 200  # the admin token came along
    assert pg.ext.evaluator.wait_idle(60)
    after_update = _snapshot(pg)
    assert after_update["rows"]["evaluations"][-1]["version"] == 4
    pg.close()

    # a second copy into a database that has tasks is refused and changes nothing
    refused = _copy(str(tmp_path / "embedded"), url)
    assert refused.returncode == 2 and "already has tasks" in refused.stderr
    check = Harness(tmp_path / "pg-cache-2", DATABASE_URL=url)
    assert check.ext.evaluator.wait_idle(60)
    assert _snapshot(check) == after_update
    check.close()

    # and back into a fresh embedded instance, byte for byte
    done = _copy(url, str(tmp_path / "back"))
    assert done.returncode == 0, done.stderr
    back = Harness(tmp_path / "back")
    assert back.ext.evaluator.wait_idle(60)
    assert _snapshot(back) == after_update
    assert back.model(task["id"], alice["token"])[0] == 4
    back.close()
    pg_cluster.drop_database(url)
