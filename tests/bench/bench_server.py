"""Server update cost: the merge against bare numpy, and the whole request path.

Run with ``make bench`` (or ``.venv/bin/python -m pytest tests/bench/bench_server.py -s
-o python_files='bench_*.py'``). Prints a table; the assertions only check that the
numbers exist, not that a noisy 2-core machine hits a target.
"""
from __future__ import annotations

import statistics
import time
import uuid

import numpy as np
import pytest

from api_helpers import Harness
from server.strategies import ClientUpdate, FedAsync

# (label, model, classes, train_blocks): real bundles whose trainable part has about N values
SIZES = [
    ("100k", "mobilenet_v2", 78, 0),
    ("1M", "mobilenet_v2", 781, 0),
    ("3.5M", "mobilenet_v2", 1000, 18),
]


def _median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


@pytest.mark.parametrize("label, model, classes, blocks", SIZES, ids=[s[0] for s in SIZES])
def test_update_cost(tmp_path, label, model, classes, blocks):
    h = Harness(tmp_path)
    task = h.create_task(model=model, classes=[f"c{i}" for i in range(classes)], train_blocks=blocks,
                         max_staleness=1000, keep_versions=1001, max_updates_per_minute=10_000,
                         aggregator={"name": "fedasync", "alpha": 0.6, "staleness": "polynomial"})
    joined = h.join(task)
    version, x = h.model(task["id"], joined["token"])
    n = x.size
    rng = np.random.default_rng(0)
    y = (x + rng.normal(0, 0.01, n)).astype(np.float32)
    a = 0.6 * 2 ** -0.5

    bare = _median_seconds(lambda: (1 - a) * x + a * y, 30)
    strategy = FedAsync(alpha=0.6)
    update = ClientUpdate(params=y, base=x, num_samples=10, staleness=1)
    merge = _median_seconds(lambda: strategy.aggregate(x, [update]), 30)

    count = 30 if n < 2_000_000 else 15
    # time only the POSTs (not the model downloads) for updates/s
    post_times = []
    for _ in range(count):
        v, current = h.model(task["id"], joined["token"])
        body = (current + rng.normal(0, 0.01, n).astype(np.float32)).tobytes()
        t0 = time.perf_counter()
        h.post_update(joined, body, v, key=uuid.uuid4().hex)
        post_times.append(time.perf_counter() - t0)
    per_post = statistics.median(post_times)
    print(f"\n| {label:>5} | {n:>9,} params | bare numpy {bare * 1e3:7.2f} ms | FedAsync merge "
          f"{merge * 1e3:7.2f} ms | merge/bare {merge / bare:4.2f} | whole POST {per_post * 1e3:7.1f} ms "
          f"= {1 / per_post:6.1f} updates/s (parse, validate, fsync'd files, SQLite commit) |")
    assert merge > 0 and per_post > 0
