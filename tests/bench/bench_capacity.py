"""Capacity (issue 16): how many participants this machine sustains as tabs of one Chromium,
as separate Chromium browsers and as CPython clients, on the digits CNN with FedAsync. For each
count: updates per minute, the slowest participant's share, memory (proportional set size of
the participants' processes, summed and per participant) and CPU seconds per wall second
(2.0 = both cores of this machine: saturated)."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from experiments.config import load
from experiments.harness import run_experiment

SECONDS = float(os.environ.get("WEBFL_BENCH_SECONDS", "45"))
MODES = os.environ.get("WEBFL_CAPACITY_MODES", "tabs,browsers,cpython").split(",")
PLAN = [(m, n) for m, counts in (("tabs", (1, 2, 4, 8, 10)), ("browsers", (1, 2, 4, 8)),
                                 ("cpython", (1, 2, 4, 8, 16))) if m in MODES for n in counts]


def _processes(match) -> list[str]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if match(pid, cmd):
                out.append(pid)
    return out


def _pss_mb(pids: list[str]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _cpu_s() -> float:
    """CPU seconds of every process on the machine (the run is all that runs)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def test_capacity(tmp_path):
    rows = []
    me = str(os.getpid())
    for mode, n in PLAN:
        config = tmp_path / f"{mode}-{n}.toml"
        clients = (f"cpython = {n}" if mode == "cpython" else
                   f"browser = {n}\nbrowser_mode = \"{'tabs' if mode == 'tabs' else 'browsers'}\"")
        config.write_text(f"""name = "capacity-{mode}-{n}"
[data]
dataset = "mnist"
partition = "iid"
test_fraction = 0.05
samples_per_client = 200
[task]
model = "digits_cnn"
lr = 0.003
batch_size = 32
local_epochs = 1
min_labelled = 10
max_staleness = 1000
keep_versions = 1001
[clients]
{clients}
[[runs]]
name = "{mode}-{n}"
aggregator = {{ name = "fedasync", alpha = 0.6, staleness = "polynomial" }}
[budget]
seconds = {SECONDS}
""")
        peak = [0.0]
        stop = threading.Event()

        def participants():
            if mode == "cpython":
                return [me]  # CPython participants run inside this process
            return _processes(lambda pid, cmd: "chromium" in cmd and "webfl-" in cmd)

        def sample():
            while not stop.wait(1.0):
                peak[0] = max(peak[0], _pss_mb(participants()))

        sampler = threading.Thread(target=sample, daemon=True)
        base_mb = _pss_mb([me]) if mode == "cpython" else 0.0
        sampler.start()
        cpu0, wall0 = _cpu_s(), time.monotonic()
        try:
            results = run_experiment(load(config), tmp_path / f"out-{mode}-{n}", log=lambda line: None)
        except Exception as exc:  # where it breaks is a result too
            stop.set()
            sampler.join()
            rows.append((mode, n, f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"))
            print(f"\n{rows[-1]}", flush=True)
            continue
        cpu, wall = _cpu_s() - cpu0, time.monotonic() - wall0
        stop.set()
        sampler.join()
        run = results["runs"][0]
        counts = run["contributions"]
        memory = max(0.0, peak[0] - base_mb)
        rows.append((mode, n, run["final"]["updates"] / (SECONDS / 60), min(counts.values(), default=0),
                     len(counts), memory, memory / n, cpu / wall, run["final"]["accuracy"]))
        print(f"\n{rows[-1]}", flush=True)
    print("\n| participants as | count | updates per minute | fewest updates from one | contributing "
          "| memory MB (PSS) | MB per participant | CPU/s (2.0 = saturated) | final accuracy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if len(r) == 3:
            print(f"| {r[0]} | {r[1]} | {r[2]} | | | | | | |")
            continue
        print(f"| {r[0]} | {r[1]} | {r[2]:.0f} | {r[3]} | {r[4]}/{r[1]} | {r[5]:.0f} | {r[6]:.0f} | {r[7]:.2f} "
              f"| {100 * r[8]:.1f}% |")
