"""The participant's side of a user study in CPython (the page runs the same code): actions
become events in the store first, reach the server once, survive a lost connection and a
reload, and a participant who declined records nothing."""
from __future__ import annotations

import asyncio
import json

import pytest

from browser_py.participant import Participant
from browser_py.protocol import FLClient, ServerRefused
from browser_py.stores import SqliteStore
from client_helpers import digit_files, image_folder_zip


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def study_task(live_server):
    return live_server.create_task("study client tests", classes=[str(d) for d in range(10)], min_labelled=20,
                                   batch_size=16, user_study=True)


def exported(live_server, task) -> list[dict]:
    raw = live_server.raw("GET", f"/api/admin/tasks/{task['id']}/study/export?format=jsonl")
    return [json.loads(line) for line in raw.decode().splitlines()]


def participant(live_server, path) -> Participant:
    store = SqliteStore(path)
    return Participant(FLClient(live_server.url, store), store)


def test_every_action_is_logged_once_and_a_reload_resends_what_was_offline(live_server, study_task, tmp_path):
    p = participant(live_server, tmp_path / "p.sqlite3")
    run(p.start(study_task["join_code"]))
    assert p.study.needs_answer and "never" in p.study.notice
    run(p.study.answer(True))
    files = digit_files(50)
    run(p.import_files([(n, d) for n, d, _ in files[:10]]))                    # unlabelled
    run(p.import_files([("labelled.zip", image_folder_zip(files[10:]))]))    # 40 labelled
    ids = run(p.suggest())
    first, second, third = ids[:3]
    run(p.dataset.accept(first))
    run(p.dataset.correct(second, "7"))
    run(p.dataset.delete(third))
    run(p.train_round(epochs=1, seed=0))
    run(p.test())
    run(p.study.flush())
    me = p.client.membership.client_id
    log = [e for e in exported(live_server, study_task) if e["participant"] == me]
    actions = [e["action"] for e in log]
    assert actions[:2] == ["add", "add"] and actions.count("suggestion") == 10
    assert actions[12:] == ["accept", "correct", "delete", "train", "round", "test"], actions
    assert log[0]["detail"] == {"count": 10, "labelled": 0, "rejected": 0, "duplicates": 0}
    assert log[12]["detail"]["item"] == first and 0 < log[12]["detail"]["confidence"] <= 1
    assert log[13]["detail"]["label"] == "7" and "suggested" in log[13]["detail"]
    assert log[16]["detail"]["status"] == "applied" and log[16]["version"] is not None
    assert all(len(json.dumps(e["detail"])) < 300 for e in log)  # small values, never image data

    # offline: events wait in the store; a reload (a new participant object over the same
    # store) records "reload" and sends everything once
    p.client.base_url = "http://127.0.0.1:9"
    run(p.dataset.correct(ids[4], "1"))
    assert run(p.study.flush()) == 0 and p.study.pending == 1
    again = participant(live_server, tmp_path / "p.sqlite3")
    run(again.start())
    assert again.study.recording and again.study.pending == 0
    log = [e for e in exported(live_server, study_task) if e["participant"] == me]
    assert [e["action"] for e in log[-2:]] == ["correct", "reload"]
    assert len({e["event_id"] for e in log}) == len(log)


def test_a_round_cancelled_while_its_photos_are_prepared_is_logged_and_sends_nothing(live_server, study_task,
                                                                                     tmp_path):
    """A cancel before training begins (the photos' features still being computed) ends the
    round there: no "train" event, one "cancel", and the server's model does not move."""
    from browser_py.trainer import Cancelled, CancelToken

    p = participant(live_server, tmp_path / "p.sqlite3")
    run(p.start(study_task["join_code"]))
    run(p.study.answer(True))
    run(p.import_files([("labelled.zip", image_folder_zip(digit_files(40, offset=100)))]))
    before = live_server.api("GET", f"/api/tasks/{study_task['id']}")["version"]
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        run(p.train_round(epochs=1, seed=0, cancel=cancel))
    assert not any(p.features.known(i.id) for i in p.dataset.labelled("train"))  # none computed
    run(p.study.flush())
    me = p.client.membership.client_id
    log = [e for e in exported(live_server, study_task) if e["participant"] == me]
    assert [e["action"] for e in log] == ["add", "cancel"] and log[1]["detail"]["seconds"] >= 0
    assert live_server.api("GET", f"/api/tasks/{study_task['id']}")["version"] == before


def test_a_participant_who_declines_records_nothing(live_server, study_task, tmp_path):
    p = participant(live_server, tmp_path / "q.sqlite3")
    run(p.start(study_task["join_code"]))
    run(p.study.answer(False))
    run(p.import_files([("labelled.zip", image_folder_zip(digit_files(20)))]))
    assert p.study.pending == 0 and not p.study.recording
    with pytest.raises(ServerRefused) as refused:
        run(p.client.call("POST", f"/api/tasks/{study_task['id']}/study/events",
                          json.dumps({"events": [{"id": "x1", "at": 1.0, "action": "add"}]}).encode(),
                          {"Content-Type": "application/json"}))
    assert refused.value.status == 403
    me = p.client.membership.client_id
    assert not [e for e in exported(live_server, study_task) if e["participant"] == me]


def test_withdrawing_deletes_what_was_recorded(live_server, study_task, tmp_path):
    p = participant(live_server, tmp_path / "r.sqlite3")
    run(p.start(study_task["join_code"]))
    run(p.study.answer(True))
    run(p.import_files([("labelled.zip", image_folder_zip(digit_files(20)))]))
    run(p.study.flush())
    me = p.client.membership.client_id
    assert [e["action"] for e in exported(live_server, study_task) if e["participant"] == me] == ["add"]
    run(p.study.answer(False))
    assert not [e for e in exported(live_server, study_task) if e["participant"] == me]
