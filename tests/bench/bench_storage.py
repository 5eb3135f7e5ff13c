"""Storage backends side by side (issue 13): updates per second through the whole POST for
the digits CNN (56,714 parameters) and MobileNetV2 with 18 trainable blocks and 1000 classes
(about 3.5M parameters): the embedded default (SQLite, one process) against PostgreSQL with
1, 2 and 4 `webfl run` processes, every acknowledgement reconciled. CPU seconds per second
of wall time for the server processes, PostgreSQL and the load generator say where it
saturates (this machine has 2 cores: 2.0 is everything).

One template instance holds both tasks (bundles built once); each configuration starts from
a copy of it (`webfl copy-instance`), so they all run the same tasks from version 0.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from live import LiveServer
from loadgen import MECHANICS_ONLY, reconcile, run_load
from pgcluster import Cluster
from server.config import ROOT

SECONDS = float(os.environ.get("WEBFL_BENCH_SECONDS", "20"))
MODELS = {
    "digits CNN": ({"classes": [str(d) for d in range(10)]}, 32),
    "MobileNetV2 3.5M": ({"model": "mobilenet_v2", "train_blocks": 18, "lr": 0.001,
                          "classes": [f"c{i}" for i in range(1000)]}, 8),
}


def _cpu_seconds(match: str) -> float:
    """utime + stime of every process whose command line contains ``match``."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if match in cmd:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total / tick


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _copy(source: str, destination: str) -> None:
    done = subprocess.run([sys.executable, "-m", "server.cli", "copy-instance", source, destination],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


def test_storage_backends_side_by_side(tmp_path):
    token = "admin-bench"
    template = LiveServer(tmp_path / "template", admin_token=token)
    try:
        tasks = {name: template.create_task(name, **config, **MECHANICS_ONLY, max_staleness=2 * clients,
                                            keep_versions=4 * clients)
                 for name, (config, clients) in MODELS.items()}
    finally:
        template.stop()
    cluster = Cluster()
    rows = []
    try:
        for name, (_, clients) in MODELS.items():
            for label, processes in (("embedded SQLite", 1), ("PostgreSQL", 1), ("PostgreSQL", 2),
                                     ("PostgreSQL", 4)):
                run_dir = tmp_path / f"{len(rows)}"
                if label == "PostgreSQL":
                    url = cluster.new_database()
                    _copy(str(tmp_path / "template"), url)
                    env = {"WEBFL_DATABASE_URL": url}
                    servers = [LiveServer(run_dir / f"p{i}", env=env, admin_token=token) for i in range(processes)]
                else:
                    _copy(str(tmp_path / "template"), str(run_dir / "p0"))
                    servers = [LiveServer(run_dir / "p0", admin_token=token)]
                try:
                    before = (_cpu_seconds("server.cli run"), _cpu_seconds("postgres"), _self_cpu())
                    wall = time.monotonic()
                    result = run_load(servers, tasks[name], clients=clients, seconds=SECONDS)
                    wall = time.monotonic() - wall
                    after = (_cpu_seconds("server.cli run"), _cpu_seconds("postgres"), _self_cpu())
                    problems = reconcile(servers[0], tasks[name], result)
                finally:
                    for s in servers:
                        s.stop()
                cpu = [(b - a) / wall for a, b in zip(before, after)]
                rows.append((name, f"{label} x{processes}", clients, result.rate, result.latency(0.5),
                             result.latency(0.99), len(result.errors), len(problems), *cpu))
                print(f"\n{rows[-1]}", flush=True)
                assert not problems
    finally:
        cluster.stop()
    print("\n| model | storage x processes | clients | updates/s | p50 ms | p99 ms | errors | lost or duplicated "
          "| CPU/s server | CPU/s PostgreSQL | CPU/s load generator |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.1f} | {1e3 * r[4]:.0f} | {1e3 * r[5]:.0f} | {r[6]} | {r[7]} "
              f"| {r[8]:.2f} | {r[9]:.2f} | {r[10]:.2f} |")
