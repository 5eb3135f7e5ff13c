"""Load: >= 200 concurrent headless clients for 60 s posting real-sized updates (digits CNN,
227 KB each) against one server on loopback; every acknowledgement reconciled."""
from __future__ import annotations

from live import LiveServer
from loadgen import MECHANICS_ONLY, reconcile, run_load, summary


def test_load_200_clients_60_seconds(tmp_path):
    server = LiveServer(tmp_path / "srv", env={"WEBFL_THREADS": "16"})
    try:
        task = server.create_task("load", classes=[str(d) for d in range(10)], max_staleness=100_000,
                                  keep_versions=100_001, **MECHANICS_ONLY)
        result = run_load(server, task, clients=200, seconds=60)
        problems = reconcile(server, task, result)
        print("\n| load | " + summary(result, problems) + " |")
        assert result.acks
    finally:
        server.stop()
