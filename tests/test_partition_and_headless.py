"""Partitions for simulated clients, and `webfl client` against a real server."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from export.partition import dirichlet, iid, lacking, parse, shards
from live import ROOT

LABELS = np.repeat(np.arange(10), 30)


def _disjoint_cover(parts, n):
    joined = np.concatenate(parts)
    return len(joined) == len(set(joined.tolist())) and set(joined.tolist()) <= set(range(n))


def test_iid_and_shards_cover_everything_once():
    for parts in (iid(LABELS, 4), shards(LABELS, 5, 2)):
        assert _disjoint_cover(parts, len(LABELS)) and sum(map(len, parts)) == len(LABELS)
    assert all(len(np.unique(LABELS[p])) <= 4 for p in shards(LABELS, 5, 2))


def test_dirichlet_small_alpha_is_skewed():
    skewed = dirichlet(LABELS, 4, alpha=0.05, seed=1)
    even = dirichlet(LABELS, 4, alpha=1000, seed=1)
    assert _disjoint_cover(skewed, len(LABELS))
    dominant = lambda parts: np.mean([np.bincount(LABELS[p], minlength=10).max() / max(1, len(p)) for p in parts])  # noqa: E731
    assert dominant(skewed) > 2 * dominant(even)


def test_lacking_drops_the_named_classes():
    parts = lacking(LABELS, [[1, 3, 7], [2, 5, 8], [4, 6, 9]])
    for p, missing in zip(parts, ([1, 3, 7], [2, 5, 8], [4, 6, 9])):
        assert not set(LABELS[p].tolist()) & set(missing) and len(p) > 0
    assert [len(p) for p in parse("lacks:1,3,7/2,5,8/4,6,9", LABELS, 3)] == [len(p) for p in parts]
    with pytest.raises(ValueError, match="2 groups for 3 clients"):
        parse("lacks:1/2", LABELS, 3)
    with pytest.raises(ValueError, match="unknown partition"):
        parse("zipf:2", LABELS, 3)


def test_headless_clients_train_against_the_server(live_server):
    task = live_server.create_task("headless", classes=[str(d) for d in range(10)], min_labelled=10,
                                   batch_size=16)
    before = live_server.api("GET", f"/api/tasks/{task['id']}")["version"]
    proc = subprocess.run(
        [sys.executable, "-m", "server.cli", "client", "--server", live_server.url, "--code", task["join_code"],
         "--dataset", "mnist", "--clients", "3", "--partition", "lacks:1,3,7/2,5,8/4,6,9", "--samples", "60",
         "--rounds", "2"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "done: 3 participants finished, 0 failed" in proc.stdout
    after = live_server.api("GET", f"/api/tasks/{task['id']}")["version"]
    assert after == before + 6
    clients = live_server.api("GET", f"/api/admin/tasks/{task['id']}/clients")["clients"]
    assert sorted(c["name"] for c in clients) == ["headless-0", "headless-1", "headless-2"]
    assert all(c["updates"] == 2 for c in clients)


def test_headless_bad_arguments_say_why(live_server):
    proc = subprocess.run([sys.executable, "-m", "server.cli", "client", "--server", live_server.url, "--code", "X",
                           "--dataset", "cifar"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "unknown dataset 'cifar'" in proc.stderr
