"""The participant and admin API on real bundles, on both storage backends: real SQLite
files and a real PostgreSQL server (a throwaway cluster, see ``pgcluster.py``)."""
from __future__ import annotations

import gzip
import io
import json
import threading

import numpy as np
import pytest

from api_helpers import ADMIN, Harness
from server.openapi import document
from server.strategies.fedasync import mix


# These tests compute merges by hand with large, round changes and post many updates
# quickly: the default change bound and rate limit have their own tests.
UNBOUNDED = {"max_change_ratio": None, "max_change_vs_recent": None, "direction_guard": False,
             "max_updates_per_minute": 10_000}


@pytest.fixture
def h(tmp_path, backend):
    harness = Harness(tmp_path, DATABASE_URL=backend)
    assert harness.ext.db.kind == ("postgresql" if backend else "sqlite")
    yield harness
    harness.close()


@pytest.fixture
def task(h):
    # alpha 0.5 with constant staleness makes merges easy to compute by hand
    return h.create_task(**UNBOUNDED, aggregator={"name": "fedasync", "alpha": 0.5, "staleness": "constant"})


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_join_then_fetch_manifest_bundle_and_model(h, task):
    preview = h.client.get(f"/api/join/{task['join_code'].lower()}")
    assert preview.status_code == 200 and preview.json["classes"][0] == "0"
    joined = h.join(task, "alice")
    assert joined["name"] == "alice" and joined["task_id"] == task["id"]
    r = h.client.get(f"/api/tasks/{task['id']}/manifest", headers=auth(joined["token"]))
    manifest = r.json
    assert r.status_code == 200 and manifest["num_parameters"] == 56714
    again = h.client.get(f"/api/tasks/{task['id']}/manifest",
                         headers=auth(joined["token"]) | {"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304
    f = h.client.get(f"/api/tasks/{task['id']}/bundle/optimizer_model.onnx", headers=auth(joined["token"]))
    assert f.status_code == 200 and f.headers["ETag"].strip('"') == manifest["files"]["optimizer_model.onnx"]["sha256"]
    version, params = h.model(task["id"], joined["token"])
    assert version == 0 and params.size == 56714
    initial = np.fromfile(h.ext.tasks.bundle_dir(task["id"]) / "parameters.f32", "<f4")
    assert np.array_equal(params, initial)


def test_fedasync_update_is_merged_and_recorded(h, task):
    joined = h.join(task, "bob")
    _, x0 = h.model(task["id"], joined["token"])
    local = x0 + 1.0
    r = h.post_update(joined, local, base_version=0, samples=42, metrics={"loss": 0.25, "accuracy": 0.9})
    assert r.status_code == 201, r.json
    assert r.json["status"] == "applied" and r.json["applied_version"] == 1 and r.json["weight"] == 0.5
    version, x1 = h.model(task["id"], joined["token"])
    assert version == 1
    np.testing.assert_allclose(x1, x0 + 0.5, atol=1e-6)
    m = h.client.get(f"/api/tasks/{task['id']}/metrics", headers=auth(joined["token"])).json
    assert m["current_version"] == 1 and m["updates"] == {"applied": 1}
    u = m["versions"][1]["updates"][0]
    assert (u["client"], u["staleness"], u["weight"], u["samples"]) == ("bob", 0, 0.5, 42)
    assert u["metrics"] == {"loss": 0.25, "accuracy": 0.9}
    since = h.client.get(f"/api/tasks/{task['id']}/metrics?since=0", headers=auth(joined["token"])).json
    assert [v["version"] for v in since["versions"]] == [1]


def test_fedasync_can_share_alpha_among_the_participants_taking_part(h):
    task = h.create_task(**UNBOUNDED, aggregator={"name": "fedasync", "alpha": 0.6, "staleness": "constant",
                                                  "share_among_active": True})
    people = [h.join(task, name) for name in ("ann", "ben", "cai")]
    weights = []
    for turn in range(5):  # they take turns, each from the newest model
        who = people[turn % 3]
        version, x = h.model(task["id"], who["token"])
        r = h.post_update(who, x + 1.0, base_version=version)
        assert r.status_code == 201, r.json
        weights.append(r.json["weight"])
    # 1, 2, then 3 participants behind the recent updates: alpha shared among them
    assert weights == pytest.approx([0.6, 0.3, 0.2, 0.2, 0.2])


def test_gzip_body_is_accepted(h, task):
    joined = h.join(task)
    _, x0 = h.model(task["id"], joined["token"])
    body = gzip.compress((x0 * 0.5).astype("<f4").tobytes())
    r = h.post_update(joined, body, 0, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 201, r.json


def test_retry_with_same_key_applies_once(h, task):
    joined = h.join(task)
    _, x0 = h.model(task["id"], joined["token"])
    first = h.post_update(joined, x0 + 2, 0, key="retry-me")
    second = h.post_update(joined, x0 + 2, 0, key="retry-me")
    assert first.status_code == 201 and second.status_code == 200
    assert second.json["duplicate"] is True and second.json["update_id"] == first.json["update_id"]
    assert h.model(task["id"], joined["token"])[0] == 1


@pytest.mark.parametrize("case", [
    "short", "long", "nan", "inf", "no-base", "bad-base", "future-base", "no-samples", "no-key",
    "bad-metrics", "bad-encoding", "bad-gzip", "norm",
])
def test_bad_updates_are_refused_and_change_nothing(tmp_path, case, backend):
    h = Harness(tmp_path, DATABASE_URL=backend)
    task = h.create_task(**UNBOUNDED, max_update_norm=100.0)
    joined = h.join(task)
    _, x0 = h.model(task["id"], joined["token"])
    before = h.state()
    body, headers, base = x0.copy(), {}, 0
    if case == "short":
        body = x0[:-1]
    elif case == "long":
        body = np.concatenate([x0, x0[:1]])
    elif case == "nan":
        body[5] = np.nan
    elif case == "inf":
        body[7] = -np.inf
    elif case == "no-base":
        headers = {"X-WebFL-Base-Version": ""}
    elif case == "bad-base":
        headers = {"X-WebFL-Base-Version": "zero"}
    elif case == "future-base":
        base = 7
    elif case == "no-samples":
        headers = {"X-WebFL-Samples": "0"}
    elif case == "no-key":
        headers = {"Idempotency-Key": ""}
    elif case == "bad-metrics":
        headers = {"X-WebFL-Metrics": "{\"loss\": \"low\"}"}
    elif case == "bad-encoding":
        headers = {"Content-Encoding": "br"}
    elif case == "bad-gzip":
        headers, body = {"Content-Encoding": "gzip"}, b"\x1f\x8bnot gzip at all"
    elif case == "norm":
        body = x0 + 1.0  # L2 change = sqrt(56714) ~ 238 > 100
    r = h.post_update(joined, body, base, headers=headers)
    expected = 413 if case == "long" else 400
    assert r.status_code == expected, r.json
    assert set(r.json) == {"error", "detail"} and r.json["error"]
    assert h.state() == before


def test_staleness_beyond_the_maximum_is_refused(tmp_path, backend):
    h = Harness(tmp_path, DATABASE_URL=backend)
    task = h.create_task(**UNBOUNDED, max_staleness=1, keep_versions=5)
    joined = h.join(task)
    _, x0 = h.model(task["id"], joined["token"])
    for _ in range(2):
        v, x = h.model(task["id"], joined["token"])
        assert h.post_update(joined, x + 0.1, v).status_code == 201
    before = h.state()
    r = h.post_update(joined, x0 + 0.1, base_version=0)
    assert r.status_code == 409 and "2 versions old" in r.json["error"]
    assert r.json["detail"] == {"current_version": 2}
    assert h.state() == before


def test_unknown_task_and_malformed_json(h, task):
    joined = h.join(task)
    r = h.client.get("/api/tasks/nope/model", headers=auth(joined["token"]))
    assert r.status_code == 404 and set(r.json) == {"error", "detail"}
    r = h.client.post("/api/join", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON object" in r.json["error"]
    r = h.client.post("/api/join", json={"code": "NOPE99"})
    assert r.status_code == 404
    r = h.admin("POST", "/api/admin/tasks", data="[1, 2", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON object" in r.json["error"]


def test_oversized_body_is_refused_before_it_is_read():
    from server.updates import PayloadTooLarge, decode_body

    class Exploding(io.RawIOBase):
        def read(self, *args):
            raise AssertionError("the server read an oversized body")

    with pytest.raises(PayloadTooLarge):
        decode_body(Exploding(), 10**9, "", num_parameters=1000)
    with pytest.raises(PayloadTooLarge):  # no Content-Length: reads at most one byte too many
        decode_body(io.BytesIO(b"\0" * 4001), None, "", num_parameters=1000)


def test_fedbuff_waits_for_its_buffer(tmp_path, backend):
    h = Harness(tmp_path, DATABASE_URL=backend)
    task = h.create_task(**UNBOUNDED, aggregator={"name": "fedbuff", "buffer_size": 2, "staleness": "constant"})
    a, b = h.join(task, "a"), h.join(task, "b")
    _, x0 = h.model(task["id"], a["token"])
    r1 = h.post_update(a, x0 + 1.0, 0)
    assert r1.json["status"] == "buffered" and h.model(task["id"], a["token"])[0] == 0
    before = h.state()
    again = h.post_update(a, x0 + 5.0, 0)  # refused under the task's lock, after its vector was written
    assert again.status_code == 409 and "already waiting" in again.json["error"]
    assert h.state() == before  # ... and that vector is gone again
    r2 = h.post_update(b, x0 + 3.0, 0)
    assert r2.json["status"] == "applied"
    version, x1 = h.model(task["id"], a["token"])
    assert version == 1
    np.testing.assert_allclose(x1, x0 + 2.0, atol=1e-5)   # mean of deltas 1 and 3


def test_fedavg_round_and_stale_client(tmp_path, backend):
    h = Harness(tmp_path, DATABASE_URL=backend)
    task = h.create_task(**UNBOUNDED, aggregator={"name": "fedavg", "min_clients": 2})
    a, b, c = h.join(task), h.join(task), h.join(task)
    _, x0 = h.model(task["id"], a["token"])
    assert h.post_update(a, x0 + 1.0, 0, samples=10).json["status"] == "buffered"
    assert h.post_update(b, x0 + 4.0, 0, samples=30).json["status"] == "applied"
    version, x1 = h.model(task["id"], a["token"])
    np.testing.assert_allclose(x1, x0 + 3.25, atol=1e-5)  # (10 * 1 + 30 * 4) / 40
    r = h.post_update(c, x0 + 1.0, 0)
    assert r.status_code == 409 and "round is over" in r.json["error"]


def test_fedavg_deadline_closes_a_short_round(tmp_path, backend):
    h = Harness(tmp_path, DATABASE_URL=backend)
    task = h.create_task(**UNBOUNDED, aggregator={"name": "fedavg", "min_clients": 5, "deadline_seconds": 0.05})
    a = h.join(task)
    _, x0 = h.model(task["id"], a["token"])
    assert h.post_update(a, x0 + 1.0, 0).json["status"] == "buffered"
    import time

    time.sleep(0.1)
    h.ext.updates.tick()
    assert h.model(task["id"], a["token"])[0] == 1


def test_concurrent_updates_are_applied_one_by_one_in_arrival_order(tmp_path, backend):
    h = Harness(tmp_path, DATABASE_URL=backend)
    task = h.create_task(**UNBOUNDED, max_staleness=1000, keep_versions=2000,
                         aggregator={"name": "fedasync", "alpha": 0.6, "staleness": "polynomial"})
    joined = [h.join(task, f"c{i}") for i in range(8)]
    _, x0 = h.model(task["id"], joined[0]["token"])
    sent: dict[str, np.ndarray] = {}
    errors = []

    def worker(i: int) -> None:
        client = h.app.test_client()
        rng = np.random.default_rng(i)
        for n in range(50):
            r = client.get(f"/api/tasks/{task['id']}/model", headers=auth(joined[i]["token"]))
            base = int(r.headers["X-WebFL-Version"])
            local = np.frombuffer(r.data, "<f4") + rng.normal(0, 0.01, x0.size).astype(np.float32)
            key = f"{i}-{n}"
            sent[key] = local
            resp = h.post_update(joined[i], local, base, key=key, client=client)
            if resp.status_code != 201:
                errors.append(resp.json)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    version, final = h.model(task["id"], joined[0]["token"])
    assert version == 400
    # Replay every update in arrival order (row id) with FedAsync's rule: same bytes.
    rows = h.ext.db.connect().execute("SELECT * FROM updates ORDER BY id").fetchall()
    assert [r["applied_version"] for r in rows] == list(range(1, 401))
    x = x0
    for r in rows:
        assert r["staleness"] == r["applied_version"] - 1 - r["base_version"]
        assert r["weight"] == pytest.approx(0.6 * (r["staleness"] + 1) ** -0.5)
        x = mix(x, sent[r["idempotency_key"]], r["weight"])
    assert np.array_equal(x, final)


def test_restart_restores_everything(tmp_path, backend):
    h = Harness(tmp_path, DATABASE_URL=backend)
    task = h.create_task(**UNBOUNDED)
    joined = h.join(task)
    _, x0 = h.model(task["id"], joined["token"])
    h.post_update(joined, x0 + 1, 0)
    version, x1 = h.model(task["id"], joined["token"])
    again = h.restart()
    assert again.model(task["id"], joined["token"]) [0] == version
    assert np.array_equal(again.model(task["id"], joined["token"])[1], x1)
    assert again.admin("GET", f"/api/admin/tasks/{task['id']}").json["join_code"] == task["join_code"]


def test_acknowledged_but_unmerged_update_is_merged_once_after_a_crash(tmp_path, monkeypatch, backend):
    h = Harness(tmp_path, DATABASE_URL=backend)
    task = h.create_task(**UNBOUNDED, aggregator={"name": "fedasync", "alpha": 0.5, "staleness": "constant"})
    joined = h.join(task)
    _, x0 = h.model(task["id"], joined["token"])
    service = h.ext.updates

    def crash(*args, **kwargs):
        raise SystemExit("power cut after the update was committed")

    monkeypatch.setattr(service, "_apply_pending", crash)
    with pytest.raises(SystemExit):
        service.submit(h.ext.tasks.get(task["id"]), h.ext.tasks.client_by_token(joined["token"]),
                       __import__("server.updates", fromlist=["UpdateMeta"]).UpdateMeta(0, 5, "k1", {}),
                       (x0 + 2).astype(np.float32))
    monkeypatch.undo()
    restarted = h.restart()
    version, x1 = restarted.model(task["id"], joined["token"])
    assert version == 1
    np.testing.assert_allclose(x1, x0 + 1.0, atol=1e-6)
    retry = restarted.post_update(joined, x0 + 2, 0, key="k1")
    assert retry.status_code == 200 and retry.json["duplicate"] and retry.json["applied_version"] == 1
    assert restarted.restart().model(task["id"], joined["token"])[0] == 1


def test_retention_deletes_old_versions(tmp_path, backend):
    h = Harness(tmp_path, DATABASE_URL=backend)
    task = h.create_task(**UNBOUNDED, max_staleness=1, keep_versions=2)
    joined = h.join(task)
    for _ in range(4):
        v, x = h.model(task["id"], joined["token"])
        assert h.post_update(joined, x + 0.1, v).status_code == 201
    for gone in (0, 2):
        r = h.client.get(f"/api/tasks/{task['id']}/model?version={gone}", headers=auth(joined["token"]))
        assert r.status_code == 410
    assert h.client.get(f"/api/tasks/{task['id']}/model?version=3", headers=auth(joined["token"])).status_code == 200
    assert len(h.ext.params.shas()) == 2  # versions 3 and 4: no older version, no merged update


def test_admin_creates_validates_and_edits_tasks(h, task):
    r = h.admin("POST", "/api/admin/tasks", json={"title": "x", "config": {"classes": ["a", "a"]}})
    assert r.status_code == 400 and "duplicate class names" in r.json["error"]
    r = h.admin("POST", "/api/admin/tasks", json={"title": "x", "config": {"classes": ["a", "b"], "batch_size": 0}})
    assert r.status_code == 400 and "batch_size" in r.json["error"]
    r = h.admin("POST", "/api/admin/tasks", json={"title": "x", "config": {
        "classes": ["a", "b"], "aggregator": {"name": "fedasync", "alpha": 7}}})
    assert r.status_code == 400 and "alpha" in r.json["error"]
    r = h.admin("POST", "/api/admin/tasks", json={"title": "", "config": {"classes": ["a", "b"]}})
    assert r.status_code == 400 and "title" in r.json["error"]
    r = h.admin("POST", "/api/admin/tasks", json={"title": "x", "config": {"classes": ["a", "b"], "colour": 1}})
    assert r.status_code == 400 and "config.colour: unknown field" in r.json["error"]
    assert len(h.admin("GET", "/api/admin/tasks").json["tasks"]) == 1

    joined = h.join(task)
    _, x0 = h.model(task["id"], joined["token"])
    r = h.admin("PATCH", f"/api/admin/tasks/{task['id']}", json={"config": {"batch_size": 64}})
    assert r.status_code == 200 and r.json["config"]["batch_size"] == 64 and r.json["version"] == 0
    r = h.admin("PATCH", f"/api/admin/tasks/{task['id']}", json={"config": {"lr": 0.05}})
    assert r.status_code == 200
    h.ext.tasks.wait_for_build(task["id"])
    detail = h.admin("GET", f"/api/admin/tasks/{task['id']}").json
    assert detail["bundle_status"] == "ready" and detail["version"] == 1
    manifest = h.client.get(f"/api/tasks/{task['id']}/manifest", headers=auth(joined["token"])).json
    assert manifest["training"]["lr"] == 0.05
    r = h.post_update(joined, x0 + 0.1, 0)
    assert r.status_code == 409 and "model changed" in r.json["error"]
    clients = h.admin("GET", f"/api/admin/tasks/{task['id']}/clients").json["clients"]
    assert len(clients) == 1


def test_validation_set_is_evaluated_for_every_version(h, task):
    from export.datasets import sklearn_digits

    data = sklearn_digits()
    buf = io.BytesIO()
    np.savez(buf, images=data.images[:200], labels=data.labels[:200])
    r = h.admin("PUT", f"/api/admin/tasks/{task['id']}/validation", data=buf.getvalue())
    assert r.status_code == 200, r.json
    assert r.json["samples"] == 200 and sum(r.json["per_class"].values()) == 200
    assert h.ext.evaluator.wait_idle(60)
    joined = h.join(task)
    _, x0 = h.model(task["id"], joined["token"])
    h.post_update(joined, x0 * 0.9, 0)
    assert h.ext.evaluator.wait_idle(60)
    m = h.client.get(f"/api/tasks/{task['id']}/metrics", headers=auth(joined["token"])).json
    for v in m["versions"]:
        e = v["evaluation"]
        assert e is not None and 0 <= e["accuracy"] <= 1 and e["samples"] == 200
        assert np.array(e["confusion"]).sum() == 200
        assert np.trace(np.array(e["confusion"])) / 200 == pytest.approx(e["accuracy"])
    bad = h.admin("PUT", f"/api/admin/tasks/{task['id']}/validation", data=b"hello")
    assert bad.status_code == 400 and "zip" in bad.json["error"]


def test_openapi_document_matches_the_routes(h):
    doc = h.client.get("/api/openapi.json").json
    assert doc == json.loads(json.dumps(document()))
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    actual = set()
    for rule in h.app.url_map.iter_rules():
        if rule.rule.startswith("/api"):
            path = rule.rule.replace("<", "{").replace(">", "}")
            actual |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == actual


def test_download_global_model_as_onnx_and_pytorch(h, task):
    import onnxruntime as ort
    import torch

    from export import load_manifest
    from export.download import rebuild

    joined = h.join(task)
    _, x0 = h.model(task["id"], joined["token"])
    h.post_update(joined, x0 * 0.5, 0)
    version, x1 = h.model(task["id"], joined["token"])
    r = h.admin("GET", f"/api/admin/tasks/{task['id']}/download?format=onnx")
    assert r.status_code == 200 and r.headers["X-WebFL-Version"] == str(version)
    pixels = (np.random.default_rng(0).random((3, 1, 28, 28)) * 255).astype(np.float32)
    logits = ort.InferenceSession(r.data).run(None, {"pixels": pixels})[0]
    manifest = load_manifest(h.ext.tasks.bundle_dir(task["id"]))
    with torch.no_grad():
        expected = rebuild(manifest, x1)(torch.from_numpy(pixels)).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    r = h.admin("GET", f"/api/admin/tasks/{task['id']}/download?format=pytorch&version=0")
    saved = torch.load(io.BytesIO(r.data), weights_only=False)
    assert saved["classes"] == [str(d) for d in range(10)]
    flat0 = np.concatenate([saved["state_dict"][f"0.{p['name']}"].numpy().ravel() for p in manifest["parameters"]])
    np.testing.assert_array_equal(flat0, x0)
    assert h.admin("GET", f"/api/admin/tasks/{task['id']}/download?format=keras").status_code == 400


def test_join_qr_code_is_an_svg(h, task):
    r = h.client.get(f"/api/join/{task['join_code']}/qr.svg")
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    assert b"<svg" in r.data and b"Join digits" in r.data
    assert h.client.get("/api/join/NOPE/qr.svg").status_code == 404


def test_start_up_collects_orphaned_parameter_files(tmp_path, backend):
    h = Harness(tmp_path, DATABASE_URL=backend)
    task = h.create_task(**UNBOUNDED)
    joined = h.join(task)
    _, x0 = h.model(task["id"], joined["token"])
    h.post_update(joined, x0 + 1, 0)
    orphan = h.ext.params.put(np.arange(10, dtype=np.float32))   # written, never referenced (a crash)
    partial = None
    if not backend:  # files: a temp file a crash left half-written
        partial = h.ext.params.path(orphan).parent / "half-written.part"
        partial.write_bytes(b"\0" * 7)
    again = h.restart()
    assert not again.ext.params.exists(orphan) and (partial is None or not partial.exists())
    again = again.restart()
    version, x = again.model(task["id"], joined["token"])
    assert version == 1 and x.size == x0.size


def test_a_nul_character_is_refused_cleanly_on_every_backend(h, task):
    """PostgreSQL cannot store NUL in text; SQLite can. Either way: a clear refusal, not a 5xx."""
    joined = h.join(task)
    before = h.state()
    for path in ("/api/join/AB%00CD", f"/api/tasks/{task['id']}%00"):
        r = h.client.get(path, headers=auth(joined["token"]))
        assert r.status_code in (400, 404) and set(r.json) == {"error", "detail"}, (path, r.data[:200])
    r = h.client.post("/api/join", json={"code": task["join_code"] + "\u0000", "name": "x"})
    assert r.status_code in (400, 404), r.data[:200]
    assert h.state() == before


def test_participant_renames_itself_and_bad_names_change_nothing(h, task):
    alice = h.join(task, "")
    assert alice["name"].startswith("participant-")
    url = f"/api/tasks/{task['id']}/me"
    r = h.client.patch(url, json={"name": "  Ada  "}, headers=auth(alice["token"]))
    assert r.status_code == 200 and r.json == {"client_id": alice["client_id"], "name": "Ada"}

    def names() -> dict:
        return {c["id"]: c["name"] for c in h.admin("GET", f"/api/admin/tasks/{task['id']}/clients").json["clients"]}

    assert names()[alice["client_id"]] == "Ada"
    for bad in ({"name": "x" * 81}, {"name": "a\x00b"}, {"name": 5}, {"name": "ok", "more": 1}, {}, [], "Ada"):
        r = h.client.patch(url, json=bad, headers=auth(alice["token"]))
        assert r.status_code == 400, (bad, r.json)
    assert names()[alice["client_id"]] == "Ada"
    # no token, the admin's token, another task's participant: refused
    assert h.client.patch(url, json={"name": "x"}).status_code == 401
    assert h.client.patch(url, json={"name": "x"}, headers={"Authorization": "Bearer " + ADMIN}).status_code == 403
    # an empty name gives back the generated one
    r = h.client.patch(url, json={"name": ""}, headers=auth(alice["token"]))
    assert r.json["name"] == f"participant-{alice['client_id'][:4]}"
