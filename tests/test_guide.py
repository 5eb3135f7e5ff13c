"""The participant's next step (browser_py.guide): one main action for every situation, in
the order a new participant meets them; and the dataset's undo of a delete."""
from __future__ import annotations

import asyncio

import pytest

from browser_py.dataset import Dataset
from browser_py.guide import ACTIONS, STEPS, Situation, next_step
from browser_py.stores import MemoryStore
from client_helpers import digit_files


def situation(**changes) -> Situation:
    base = dict(total=0, unlabelled=0, suggested=0, labelled_train=0, labelled_test=0, min_labelled=10, version=0)
    return Situation(**(base | changes))


@pytest.mark.parametrize("changes, key, does, words", [
    ({}, "add", "pick-files", "Add photos of each class"),
    # the shared model knows nothing: label by hand first, not with its guesses
    ({"total": 20, "unlabelled": 20}, "review", "label-first", "has not learned anything yet"),
    ({"total": 20, "unlabelled": 20, "version": 3}, "review", "suggest", "suggest labels for your 20 photos"),
    ({"total": 20, "unlabelled": 5, "suggested": 15, "version": 3}, "review", "check-first", "Check the 15 photos"),
    ({"total": 6, "labelled_train": 6}, "add", "pick-files", "Training needs 10 photos"),
    ({"total": 14, "labelled_train": 12, "labelled_test": 2}, "train", "train", "Train on your 12 photos"),
    ({"total": 14, "labelled_train": 12, "labelled_test": 2, "trained_on": 12, "version": 1}, "test", "test",
     "your 2 photos kept aside"),
    # new labels since the last round: train again before testing
    ({"total": 20, "labelled_train": 16, "labelled_test": 2, "trained_on": 12, "version": 1}, "train", "train",
     "Train on your 16 photos"),
    ({"total": 20, "labelled_train": 12, "labelled_test": 2, "unlabelled": 6, "trained_on": 12, "version": 1,
      "tested_version": 1}, "review", "suggest", "improved model"),
    ({"total": 14, "labelled_train": 12, "labelled_test": 2, "trained_on": 12, "version": 1, "tested_version": 1},
     "add", "pick-files", "Done for now"),
])
def test_next_step(changes, key, does, words):
    step = next_step(situation(**changes))
    assert (step.key, step.does) == (key, does) and words in step.hint, step
    assert step.key in STEPS and step.does in ACTIONS and step.number == STEPS.index(key) + 1
    assert step.action and len(step.action) < 30  # a button's words, not a sentence


def test_a_deleted_image_comes_back_exactly_as_it_was():
    async def run():
        store = MemoryStore()
        ds = await Dataset(store, [str(d) for d in range(10)]).load()
        seen = []

        async def observe(action, **detail):
            seen.append((action, detail))

        ds.observer = observe
        (name, data, label), = digit_files(1)
        item_id = (await ds.add_image(name, data, label)).added[0]
        item = ds.get(item_id)
        await ds.delete(item_id)
        assert item_id not in ds.items and await store.get_item(item_id) is None
        await ds.restore(item)
        again = await Dataset(store, ds.classes).load()  # as after a reload
        assert again.get(item_id) == item
        assert [a for a, _ in seen] == ["delete", "undo"] and seen[1][1] == {"item": item_id, "label": label}

    asyncio.run(run())


@pytest.mark.parametrize("features, training, says", [
    ("WebGPU", "onnxruntime-web (wasm, 4 threads)", "graphics chip, which is fast, and trains with its processor (4 cores"),
    ("wasm, 2 threads", "onnxruntime-web (wasm, 2 threads)", "the browser offers no graphics chip"),
    ("none", "onnxruntime-web (wasm, 1 thread)", "trains with its processor (1 core at once)"),
])
def test_the_device_is_described_in_plain_words(features, training, says):
    from browser_py.ui.participant_page import device_words

    words = device_words(features, training)
    assert says in words and "wasm" not in words and "WebGPU" not in words


@pytest.mark.parametrize("kept, drawn", [
    ([0.69, 0.5, 0.31], [0.69, 0.5, 0.31]),
    ([1, 0.5], [1.0, 0.5]),
    ([], []),
    (None, []), ("0.5", []), ({"0": 0.5}, []),  # kept by an older page, or damaged
    ([0.5, float("nan")], []), ([float("inf")], []), ([True, 0.5], []), ([0.5, "0.4"], []), ([[0.5]], []),
])
def test_a_kept_error_curve_is_drawn_only_when_it_is_one(kept, drawn):
    from browser_py.ui.participant_page import KEPT_LOSS_POINTS, saved_curve

    assert saved_curve(kept) == drawn
    assert saved_curve([0.1] * KEPT_LOSS_POINTS) == [0.1] * KEPT_LOSS_POINTS
    assert saved_curve([0.1] * (KEPT_LOSS_POINTS + 1)) == []


def test_tile_markup_escapes_what_participants_typed():
    from browser_py.ui.dom import markup

    html = markup("figure", cls="tile", aria_label='a "quoted" <b>name</b> & more', data_id="x1",
                  children=(markup("span", "<script>alert(1)</script>"), markup("option", "cat", value="cat", selected="")))
    assert html == ('<figure class="tile" aria-label="a &quot;quoted&quot; &lt;b&gt;name&lt;/b&gt; &amp; more" '
                    'data-id="x1"><span>&lt;script&gt;alert(1)&lt;/script&gt;</span>'
                    '<option value="cat" selected>cat</option></figure>')
    assert markup("option", "dog", value="dog", selected=None) == '<option value="dog">dog</option>'


def test_a_countdown_says_each_second_left_and_stops_when_told():
    """The line a participant reads while the page waits to ask the server again."""
    from itertools import groupby
    from types import SimpleNamespace

    from browser_py.ui.dom import Countdown

    class Line(SimpleNamespace):
        seen: list

        def __setattr__(self, name, value):
            if name == "textContent":
                self.seen.append(value)
            super().__setattr__(name, value)

    async def run() -> None:
        line = Line(seen=[])
        count = Countdown(line)
        count.start(2.5, lambda left: f"again in {left} s")
        await asyncio.sleep(3.5)
        assert [k for k, _ in groupby(line.seen)] == ["again in 3 s", "again in 2 s", "again in 1 s"]
        line.seen.clear()
        count.start(60, lambda left: f"first {left}")
        count.start(60, lambda left: f"second {left}")  # a new wait replaces the count
        await asyncio.sleep(0.1)
        count.stop()
        await asyncio.sleep(1.1)
        assert line.seen == ["second 60"]

    asyncio.run(run())


def test_a_wait_the_server_asked_for_is_told_apart_from_no_connection():
    from browser_py.participant import RoundResult
    from browser_py.protocol import ServerBusy, ServerUnavailable
    from browser_py.ui.participant_page import retry_words, round_words

    busy = ServerBusy("this task accepts 1 update per minute from one participant", 42.0)
    assert retry_words(42, busy) == ("The server asked to wait: this task accepts 1 update per minute from one "
                                     "participant. Trying again in 42 s…")
    assert retry_words(3, ServerUnavailable("GET /x: HTTP 503")) == ("No answer from the server yet. "
                                                                     "Trying again in 3 s…")
    told = RoundResult(4, [0.5], 20, {"status": "waiting", "busy": busy.reason, "retry_after": 41.2}, [])
    assert "asked to wait (this task accepts 1 update " in round_words(told) and "in about 42 s" in round_words(told)
    unsaid = RoundResult(4, [0.5], 20, {"status": "waiting", "busy": "slow down", "retry_after": None}, [])
    assert "It is sent by itself later" in round_words(unsaid)
    offline = RoundResult(4, [0.5], 20, {"status": "waiting"}, [])
    assert "no connection" in round_words(offline) and "asked to wait" not in round_words(offline)
