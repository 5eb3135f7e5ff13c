"""A short load run in the suite (the 60 s, 200-client run is `make bench`)."""
from __future__ import annotations

from loadgen import MECHANICS_ONLY, reconcile, run_load, summary


def test_short_load_run_loses_nothing(live_server):
    task = live_server.create_task("load", classes=[str(d) for d in range(10)], max_staleness=100_000,
                                   keep_versions=100_001, **MECHANICS_ONLY)
    result = run_load(live_server, task, clients=40, seconds=8)
    problems = reconcile(live_server, task, result)
    print("\n" + summary(result, problems))
    assert result.errors == []
    assert problems == []
    assert len(result.acks) > 40
