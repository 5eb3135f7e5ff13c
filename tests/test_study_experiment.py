"""Simulated participants in a user study produce the page's action log, and the experiment
report analyses it (experiments/configs/study_smoke.toml: a browser tab and CPython participants)."""
from __future__ import annotations

import json

import pytest

from experiments import interactions
from live import run_experiment_cli

pytestmark = pytest.mark.browser


def test_simulated_study_log_and_its_analysis(tmp_path):
    out = tmp_path / "out"
    run = run_experiment_cli("experiments/configs/study_smoke.toml", out)["runs"][0]
    events = [json.loads(line) for line in (out / "interactions-fedasync.jsonl").read_text().splitlines()]
    s = run["interactions"]
    assert s == interactions.summarise(events) and s["participants"] == 3  # the tab and two CPython
    # the same actions a person's page records: adding, suggestions answered, rounds sent
    assert {"add", "suggestion", "train", "round"} <= set(s["actions"])
    assert s["actions"]["accept"] + s["actions"]["correct"] >= 20
    assert s["actions"]["round"] >= 2
    answered = sum(b["answered"] for b in s["acceptance"])
    assert answered == s["actions"]["accept"] + s["actions"]["correct"]
    assert sum(round(b["rate"] * b["seconds"] / 60) for b in s["labels_per_minute"]) == answered
    assert len(s["time_to_first_round"]) == 3
    # a suggestion is accepted exactly when it was right: the confident ones are mostly right
    rates = [b["rate"] for b in s["acceptance"] if b["answered"] >= 5]
    assert rates and max(rates) > 0.5
    assert (out / "interactions.png").stat().st_size > 10_000
    assert "User study, run fedasync" in (out / "report.md").read_text()


def test_summary_of_a_hand_made_log():
    log = [
        {"participant": "a", "at": 100.0, "action": "add", "detail": {"count": 5}},
        {"participant": "a", "at": 101.0, "action": "accept", "detail": {"confidence": 0.95}},
        {"participant": "a", "at": 102.0, "action": "correct", "detail": {"confidence": 0.3, "label": "1"}},
        {"participant": "a", "at": 103.0, "action": "correct", "detail": {"label": "2"}},  # no suggestion
        {"participant": "a", "at": 130.0, "action": "round", "detail": {"status": "applied"}},
        {"participant": "b", "at": 110.0, "action": "accept", "detail": {"confidence": 1.0}},
    ]
    s = interactions.summarise(log)
    assert s["events"] == 6 and s["participants"] == 2
    assert [b["rate"] for b in s["labels_per_minute"]] == [18.0, 6.0, 0.0, 0.0]  # 3 labels in the first 10 s, 1 in the next
    top = s["acceptance"][-1]
    assert (top["answered"], top["accepted"]) == (2, 2)
    assert s["acceptance"][1] == {"low": 0.2, "high": 0.4, "answered": 1, "accepted": 0, "rate": 0.0}
    assert s["time_to_first_round"] == {"a": 30.0}
    assert interactions.summarise([])["events"] == 0
