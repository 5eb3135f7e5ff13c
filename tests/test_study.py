"""User-study mode through the real API on both backends: consent gates the log, events are
bounded and stored once, a withdrawal deletes, and the export is CSV and JSON Lines."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time

import pytest

from api_helpers import Harness


@pytest.fixture
def h(tmp_path, backend):
    harness = Harness(tmp_path, DATABASE_URL=backend)
    yield harness
    harness.close()


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def event(i: int, action: str = "accept", **detail) -> dict:
    return {"id": f"e{i}", "at": time.time(), "action": action, "version": 0,
            "detail": detail or {"item": f"img{i}", "label": "3", "confidence": 0.75}}


def send(h, task, joined, events):
    return h.client.post(f"/api/tasks/{task['id']}/study/events", json={"events": events},
                         headers=auth(joined["token"]))


def consent(h, task, joined, agreed: bool):
    return h.client.post(f"/api/tasks/{task['id']}/study/consent", json={"agreed": agreed},
                         headers=auth(joined["token"]))


def test_a_participant_who_did_not_agree_is_refused_and_nothing_is_stored(h):
    task = h.create_task(user_study=True)
    assert task["config"]["user_study"] is True
    joined = h.join(task)
    preview = h.client.get(f"/api/join/{task['join_code']}").json
    assert preview["study"]["enabled"] and "never" in preview["study"]["notice"]
    r = h.client.get(f"/api/tasks/{task['id']}/study/consent", headers=auth(joined["token"]))
    assert r.status_code == 200 and r.json["agreed"] is None
    r = send(h, task, joined, [event(1)])
    assert r.status_code == 403 and "not agreed" in r.json["error"]
    assert consent(h, task, joined, False).status_code == 200
    r = send(h, task, joined, [event(2)])
    assert r.status_code == 403
    assert h.admin("GET", f"/api/admin/tasks/{task['id']}/study").json | {"actions": None} == {
        "enabled": True, "agreed": 0, "declined": 1, "events": 0, "actions": None}
    assert h.admin("GET", f"/api/admin/tasks/{task['id']}/study/export?format=jsonl").data == b""


def test_agreed_events_are_stored_once_and_exported(h):
    task = h.create_task(user_study=True)
    a, b = h.join(task, "Alice Example"), h.join(task)
    assert consent(h, task, a, True).json == {"agreed": True}
    assert consent(h, task, b, True).status_code == 200
    r = send(h, task, a, [event(1), event(2, "correct", item="img2", label="4", suggested="3")])
    assert r.status_code == 201 and r.json == {"stored": 2, "duplicates": 0}
    # a retry of the same batch (the page's outbox after a lost answer) stores nothing twice
    r = send(h, task, a, [event(1), event(2, "correct", item="img2", label="4", suggested="3"), event(3, "train")])
    assert r.json == {"stored": 1, "duplicates": 2}
    assert send(h, task, b, [event(1, "delete", item="x")]).json == {"stored": 1, "duplicates": 0}

    lines = h.admin("GET", f"/api/admin/tasks/{task['id']}/study/export?format=jsonl").data.decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 4 and {r["participant"] for r in rows} == {a["client_id"], b["client_id"]}
    assert "Alice Example" not in "".join(lines)  # pseudonymous: the id, never the display name
    mine = [r for r in rows if r["participant"] == a["client_id"]]
    assert [r["action"] for r in mine] == ["accept", "correct", "train"]
    assert mine[1]["detail"] == {"item": "img2", "label": "4", "suggested": "3"}

    r = h.admin("GET", f"/api/admin/tasks/{task['id']}/study/export?format=csv")
    assert r.mimetype == "text/csv" and "attachment" in r.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(r.data.decode())))
    assert [(r["event_id"], r["action"], json.loads(r["detail"])) for r in table] == \
        [(e["event_id"], e["action"], e["detail"]) for e in rows]  # the CSV holds what the JSON Lines hold
    assert set(table[0]) == {"task_id", "participant", "event_id", "at", "received", "action", "version", "detail"}

    # withdrawing deletes what was recorded of that participant only
    assert consent(h, task, a, False).status_code == 200
    left = h.admin("GET", f"/api/admin/tasks/{task['id']}/study/export?format=jsonl").data.decode().splitlines()
    assert [json.loads(x)["participant"] for x in left] == [b["client_id"]]
    assert send(h, task, a, [event(9)]).status_code == 403


def test_a_changed_notice_asks_again_before_anything_more_is_recorded(h):
    task = h.create_task(user_study=True)
    joined = h.join(task)
    consent(h, task, joined, True)
    assert send(h, task, joined, [event(1)]).status_code == 201
    r = h.admin("PATCH", f"/api/admin/tasks/{task['id']}", json={"config": {"study_notice": "A new study text."}})
    assert r.status_code == 200, r.json
    answer = h.client.get(f"/api/tasks/{task['id']}/study/consent", headers=auth(joined["token"])).json
    assert answer == {"agreed": None, "notice": "A new study text."}
    assert send(h, task, joined, [event(2)]).status_code == 403
    consent(h, task, joined, True)
    assert send(h, task, joined, [event(3)]).json == {"stored": 1, "duplicates": 0}


def test_tasks_without_a_study_record_nothing(h):
    task = h.create_task()
    joined = h.join(task)
    assert h.client.get(f"/api/join/{task['join_code']}").json["study"] == {"enabled": False}
    assert consent(h, task, joined, True).status_code == 409
    assert send(h, task, joined, [event(1)]).status_code == 409


HOSTILE = [
    {"events": []},
    {"events": [event(1)] * 501},
    {"events": [event(1) | {"action": "screenshot"}]},
    {"events": [event(1) | {"id": "x" * 65}]},
    {"events": [event(1) | {"id": "../../etc"}]},
    {"events": [event(1) | {"at": 1e308}]},
    {"events": [event(1) | {"at": -1}]},
    {"events": [event(1) | {"at": "١٢٣"}]},
    {"events": [event(1) | {"version": 2**64}]},
    {"events": [event(1) | {"version": -1}]},
    {"events": [event(1) | {"detail": {"pixels": "x" * 201}}]},
    {"events": [event(1) | {"detail": {"n": 2**70}}]},
    {"events": [event(1) | {"detail": {"nested": {"a": 1}}}]},
    {"events": [event(1) | {"detail": {"bad key": 1}}]},
    {"events": [event(1) | {"detail": {f"k{i}": i for i in range(17)}}]},
    {"events": [event(1) | {"extra": 1}]},
    {"events": [event(1) | {"detail": {"x": "a\u0000b"}}]},
]


def test_hostile_event_batches_get_a_clear_400_and_change_nothing(h):
    task = h.create_task(user_study=True)
    joined = h.join(task)
    consent(h, task, joined, True)
    for i, body in enumerate(HOSTILE):
        r = h.client.post(f"/api/tasks/{task['id']}/study/events", json=body, headers=auth(joined["token"]))
        assert r.status_code in (400, 413), (i, r.status_code, r.json)
        assert r.json["error"]
    assert h.admin("GET", f"/api/admin/tasks/{task['id']}/study").json["events"] == 0


def test_a_participant_cannot_make_the_server_store_without_limit(h, monkeypatch):
    from server import study

    monkeypatch.setattr(study, "MAX_EVENTS_PER_PARTICIPANT", 5)
    task = h.create_task(user_study=True)
    joined = h.join(task)
    consent(h, task, joined, True)
    assert send(h, task, joined, [event(i) for i in range(4)]).json == {"stored": 4, "duplicates": 0}
    r = send(h, task, joined, [event(i) for i in range(4, 6)])  # would make 6
    assert r.status_code == 413 and "at most 5" in r.json["error"]
    assert h.admin("GET", f"/api/admin/tasks/{task['id']}/study").json["events"] == 4  # nothing of it stored
    assert send(h, task, joined, [event(0), event(4)]).json == {"stored": 1, "duplicates": 1}  # 5: still fits


def test_deep_or_huge_json_is_refused(h):
    task = h.create_task(user_study=True)
    joined = h.join(task)
    consent(h, task, joined, True)
    for raw in (b'{"events":' + b"[" * 5000 + b"]" * 5000 + b"}", b'{"events":[' + b'"x",' * 200_000 + b'"x"]}',
                b"\xff\xfe", b"null"):
        r = h.client.post(f"/api/tasks/{task['id']}/study/events", data=raw,
                          headers=auth(joined["token"]) | {"Content-Type": "application/json"})
        assert r.status_code in (400, 413), r.status_code
    r = h.client.post(f"/api/tasks/{task['id']}/study/consent", json={"agreed": 1}, headers=auth(joined["token"]))
    assert r.status_code == 400


def test_the_admin_and_other_tasks_cannot_write_the_log(h):
    task, other = h.create_task(user_study=True), h.create_task("other", user_study=True)
    stranger = h.join(other)
    consent(h, other, stranger, True)
    assert send(h, task, stranger, [event(1)]).status_code == 403
    r = h.admin("POST", f"/api/tasks/{task['id']}/study/events", json={"events": [event(1)]})
    assert r.status_code == 403
    joined = h.join(task)
    r = h.client.get(f"/api/admin/tasks/{task['id']}/study/export", headers=auth(joined["token"]))
    assert r.status_code == 403
    assert h.admin("GET", f"/api/admin/tasks/{task['id']}/study/export?format=xml").status_code == 400


def test_the_cli_exports_the_same_log(h, tmp_path, backend):
    task = h.create_task(user_study=True)
    joined = h.join(task)
    consent(h, task, joined, True)
    send(h, task, joined, [event(1), event(2, "train", labelled=12, epochs=1)])
    via_api = h.admin("GET", f"/api/admin/tasks/{task['id']}/study/export?format=csv").data.decode()
    out = tmp_path / "log.csv"
    env = {"WEBFL_DATA_DIR": str(tmp_path)} | ({"WEBFL_DATABASE_URL": backend} if backend else {})
    import os

    r = subprocess.run([sys.executable, "-m", "server.cli", "study-export", task["id"], "--out", str(out)],
                       env=os.environ | env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.read_text() == via_api and "2 events" in r.stdout
    r = subprocess.run([sys.executable, "-m", "server.cli", "study-export", "no-such-task"],
                       env=os.environ | env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no task" in r.stderr
