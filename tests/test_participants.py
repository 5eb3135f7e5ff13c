"""What the server decides about participants: blocking, join codes, rate limits, how much
one participant counts, and what each one may see."""
from __future__ import annotations

import numpy as np
import pytest

from api_helpers import Harness


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def h(tmp_path):
    return Harness(tmp_path)


def test_blocking_stops_the_token_at_once_and_drops_waiting_updates(h):
    task = h.create_task(aggregator={"name": "fedbuff", "buffer_size": 3})
    bad, good = h.join(task, "mallory"), h.join(task, "alice")
    _, x0 = h.model(task["id"], bad["token"])
    assert h.post_update(bad, x0 + 0.01, 0).json["status"] == "buffered"
    r = h.admin("POST", f"/api/admin/tasks/{task['id']}/clients/{bad['client_id']}/block")
    assert r.status_code == 200 and r.json == {"client_id": bad["client_id"], "blocked": True,
                                               "pending_updates_dropped": 1}
    for path in ("", "/manifest", "/model", "/metrics"):
        refused = h.client.get(f"/api/tasks/{task['id']}{path}", headers=auth(bad["token"]))
        assert refused.status_code == 403 and "removed you" in refused.json["error"]
    assert h.post_update(bad, x0 + 0.01, 0).status_code == 403
    assert h.client.get(f"/api/tasks/{task['id']}/model", headers=auth(good["token"])).status_code == 200
    listing = h.admin("GET", f"/api/admin/tasks/{task['id']}/clients").json["clients"]
    mallory = next(c for c in listing if c["name"] == "mallory")
    assert mallory["blocked"] is not None and mallory["pending"] == 0 and mallory["discarded"] == 1
    row = h.ext.db.connect().execute("SELECT status, error FROM updates").fetchone()
    assert tuple(row) == ("discarded", "participant blocked")
    unknown = h.admin("POST", f"/api/admin/tasks/{task['id']}/clients/nobody/block")
    assert unknown.status_code == 404


def test_rotating_the_join_code_retires_the_old_link_and_keeps_members(h):
    task = h.create_task()
    member = h.join(task)
    r = h.admin("POST", f"/api/admin/tasks/{task['id']}/join-code")
    new_code = r.json["join_code"]
    assert r.status_code == 200 and new_code != task["join_code"]
    assert h.client.get(f"/api/join/{task['join_code']}").status_code == 404
    assert h.client.post("/api/join", json={"code": task["join_code"]}).status_code == 404
    assert h.client.post("/api/join", json={"code": new_code}).status_code == 201
    assert h.client.get(f"/api/tasks/{task['id']}/model", headers=auth(member["token"])).status_code == 200


def test_joins_are_limited_per_address(tmp_path):
    h = Harness(tmp_path, JOINS_PER_MINUTE=3)
    task = h.create_task()
    for _ in range(3):
        h.join(task)
    before = h.state()
    r = h.client.post("/api/join", json={"code": task["join_code"]})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "too many joins" in r.json["error"]
    assert h.state() == before
    other = h.client.post("/api/join", json={"code": task["join_code"]}, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert other.status_code == 201


def test_updates_are_limited_per_participant(h):
    task = h.create_task(max_updates_per_minute=2)
    me = h.join(task)
    for _ in range(2):
        version, x = h.model(task["id"], me["token"])
        assert h.post_update(me, x + 0.001, version).status_code == 201
    version, x = h.model(task["id"], me["token"])
    before = h.state()
    r = h.post_update(me, x + 0.001, version)
    assert r.status_code == 429 and "2 updates per minute" in r.json["error"] and "Retry-After" in r.headers
    assert h.state() == before


def test_a_claimed_sample_count_weighs_only_up_to_the_task_cap(h):
    task = h.create_task(max_samples=10, max_change_ratio=None, direction_guard=False,
                         aggregator={"name": "fedavg", "min_clients": 2})
    a, b = h.join(task), h.join(task)
    _, x0 = h.model(task["id"], a["token"])
    assert h.post_update(a, x0 + 1.0, 0, samples=10**9).json["status"] == "buffered"
    ack = h.post_update(b, x0 - 1.0, 0, samples=10).json
    assert ack["status"] == "applied"
    _, x1 = h.model(task["id"], a["token"])
    np.testing.assert_allclose(x1, x0, atol=1e-6)  # both count as 10 images: the changes cancel
    before = h.state()
    too_many = h.post_update(a, x0, 1, samples=10**12)
    assert too_many.status_code == 400 and "X-WebFL-Samples" in too_many.json["error"]
    assert h.state() == before


@pytest.mark.parametrize("aggregator", [{"name": "fedavg", "min_clients": 3}, {"name": "fedbuff", "buffer_size": 3}])
def test_one_update_per_participant_per_round_or_buffer(h, aggregator):
    task = h.create_task(aggregator=aggregator)
    a = h.join(task)
    _, x0 = h.model(task["id"], a["token"])
    assert h.post_update(a, x0 + 0.01, 0).json["status"] == "buffered"
    before = h.state()
    second = h.post_update(a, x0 + 0.02, 0)
    assert second.status_code == 409 and "already waiting" in second.json["error"]
    assert h.state() == before


def test_the_fedavg_takeover_from_the_issue_is_refused(h):
    """One participant posting two `global + 100` updates claiming 10^12 samples into a round of 3."""
    task = h.create_task(aggregator={"name": "fedavg", "min_clients": 3})
    attacker, honest = h.join(task), h.join(task)
    _, x0 = h.model(task["id"], attacker["token"])
    first = h.post_update(attacker, x0 + 100, 0, samples=10**12)
    assert first.status_code == 400                                # the claim is past the header's bound
    second = h.post_update(attacker, x0 + 100, 0, samples=10**9)
    assert second.status_code == 400 and "changes the model by" in second.json["error"]  # past the size bound
    assert h.post_update(honest, x0 + 0.01, 0).json["status"] == "buffered"
    assert h.model(task["id"], honest["token"])[0] == 0


def test_a_participant_builds_on_its_own_last_update(h):
    task = h.create_task(direction_guard=False)
    me = h.join(task)
    _, x0 = h.model(task["id"], me["token"])
    assert h.post_update(me, x0 + 0.01, 0).json["applied_version"] == 1
    before = h.state()
    again = h.post_update(me, x0 - 0.01, 0)  # a second update from the same starting point
    assert again.status_code == 409 and "went into version 1" in again.json["error"]
    assert h.state() == before
    _, x1 = h.model(task["id"], me["token"])
    assert h.post_update(me, x1 + 0.01, 1).status_code == 201


def test_the_direction_guard_keeps_but_does_not_merge_a_reversed_change(h):
    task = h.create_task(aggregator={"name": "fedasync", "alpha": 0.5, "staleness": "constant"})
    people = [h.join(task, f"p{i}") for i in range(4)]
    rng = np.random.default_rng(0)
    direction = rng.normal(0, 0.01, 56714).astype(np.float32)
    for p in people[:3]:  # three participants moving the same way
        version, x = h.model(task["id"], p["token"])
        ack = h.post_update(p, x + direction + rng.normal(0, 0.002, x.size).astype(np.float32), version).json
        assert ack["status"] == "applied"
    version, x = h.model(task["id"], people[3]["token"])
    ack = h.post_update(people[3], x - direction, version).json
    assert ack["status"] == "discarded" and ack["applied_version"] is None
    assert h.model(task["id"], people[3]["token"])[0] == version
    row = h.ext.db.connect().execute("SELECT error FROM updates ORDER BY id DESC LIMIT 1").fetchone()
    assert "points against what the other participants did" in row["error"]
    honest = h.post_update(people[0], x + direction, version).json
    assert honest["status"] == "applied"


def test_update_size_bound_is_on_by_default_and_relative_to_the_model(h):
    task = h.create_task()
    assert task["config"]["max_change_ratio"] == 1.0
    me = h.join(task)
    _, x0 = h.model(task["id"], me["token"])
    before = h.state()
    far = x0 + np.float32(2.0) * x0 / np.float32(1.0)   # change = 2x the model's own size
    r = h.post_update(me, far, 0)
    assert r.status_code == 400 and r.json["detail"]["bound"] == pytest.approx(float(np.linalg.norm(x0)), rel=1e-4)
    big = np.full(x0.size, np.finfo(np.float32).max, np.float32)
    r = h.post_update(me, big, 0)
    assert r.status_code == 400 and "magnitude" in r.json["error"]
    assert h.state() == before


def test_participants_see_aggregates_and_their_own_updates_only(h):
    task = h.create_task(direction_guard=False)
    alice, bob = h.join(task, "alice"), h.join(task, "bob")
    for p in (alice, bob):
        version, x = h.model(task["id"], p["token"])
        h.post_update(p, x + 0.01, version, samples=17)
    mine = h.client.get(f"/api/tasks/{task['id']}/metrics", headers=auth(alice["token"])).json
    text = str(mine)
    assert "bob" not in text and bob["client_id"] not in text
    v1, v2 = mine["versions"][1], mine["versions"][2]
    assert v1["contributors"] == 1 and v2["contributors"] == 1
    assert [u["client"] for v in mine["versions"] for u in v["updates"]] == ["alice"]
    everything = h.admin("GET", f"/api/tasks/{task['id']}/metrics").json
    assert sorted(u["client"] for v in everything["versions"] for u in v["updates"]) == ["alice", "bob"]


def test_a_learning_rate_past_the_bound_is_refused(h):
    r = h.admin("POST", "/api/admin/tasks", json={"title": "x", "config": {"classes": ["a", "b"], "lr": 1e308}})
    assert r.status_code == 400 and r.json["error"].startswith("config.lr:")


def test_choices_describe_the_form_from_the_declarations(h):
    choices = h.admin("GET", "/api/admin/choices").json
    settings = {s["name"]: s for s in choices["settings"]}
    assert settings["lr"]["max"] == 1.0 and settings["lr"]["default"] == 0.003 and settings["lr"]["help"]
    fedbuff = next(a for a in choices["aggregators"] if a["name"] == "fedbuff")
    params = {p["name"]: p for p in fedbuff["params"]}
    assert params["trim"]["kind"] == "number" and params["trim"]["max"] == 0.5
    assert set(params["combiner"]["choices"]) == {"mean", "median", "trimmed_mean", "multi_krum", "centered_clipping"}


def test_extension_parameters_are_checked_against_the_extensions_own_signature(h):
    def create(params):
        return h.admin("POST", "/api/admin/tasks", json={"title": "x", "config": {
            "classes": ["a", "b"], "extensions": [{"name": "local_dp", "params": params}]}})

    before = h.state()
    unknown = create({"flip": 7})
    assert unknown.status_code == 400 and "no parameter 'flip'" in unknown.json["error"]
    wrong = create({"clip": "wide"})
    assert wrong.status_code == 400 and "clip must be number" in wrong.json["error"]
    assert h.state() == before
    assert create({"clip": 0.5, "noise_multiplier": 0.0, "seed": None}).status_code == 201
    offered = {e["name"]: e for e in h.admin("GET", "/api/admin/choices").json["extensions"]}
    assert [p["name"] for p in offered["local_dp"]["params"]] == ["clip", "noise_multiplier", "delta", "seed"]
    assert offered["uncertainty_first"]["title"] == "Review the least certain images first"


def test_metric_names_cannot_carry_data(h):
    """The covert channel an extension used: data hidden in metric *names* (anyone with the
    join code read them back). Names are short identifiers, at most 32, values finite."""
    import base64
    import json as json_

    task = h.create_task()
    me = h.join(task)
    _, x0 = h.model(task["id"], me["token"])
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(200))).decode()
    smuggled = [{png[:40]: 1.0}, {f"k{png[i:i + 40]}": 1.0 for i in range(0, 1200, 40)},
                {f"m{i}": 1.0 for i in range(33)}, {"ok": float("inf")}, {"a" * 49: 1.0}]
    before = h.state()
    for metrics in smuggled:
        r = h.post_update(me, x0 + 0.001, 0, headers={"X-WebFL-Metrics": json_.dumps(metrics)})
        assert r.status_code == 400 and "X-WebFL-Metrics" in r.json["error"], (list(metrics)[:2], r.json)
    assert h.state() == before
    assert h.post_update(me, x0 + 0.001, 0, metrics={"dp_epsilon": 1.5, "local_test_accuracy": 0.9}).status_code == 201
