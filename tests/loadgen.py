"""A bounded load generator for the real server (loopback only): many concurrent
participants posting real-sized updates, every acknowledgement reconciled afterwards."""
from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoadResult:
    clients: int
    seconds: float
    acks: list[tuple[str, dict, float]] = field(default_factory=list)  # (client id, ack, latency s)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.acks) / self.seconds

    def latency(self, q: float) -> float:
        lat = sorted(a[2] for a in self.acks)
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")


# Load and crash runs post random vectors as fast as they can: they measure the durable
# path, so the guards that judge content and pace (tested on their own) are off.
MECHANICS_ONLY = {"max_change_ratio": None, "max_change_vs_recent": None, "direction_guard": False,
                  "max_updates_per_minute": 10_000}


def run_load(server, task: dict, clients: int, seconds: float, max_requests: int = 100_000) -> LoadResult:
    """``clients`` threads, each a joined participant with its own keep-alive connection.
    ``server`` may be a list of processes serving one task: participants take turns."""
    servers = server if isinstance(server, list) else [server]
    server = servers[0]
    joined = [server.api("POST", "/api/join", {"code": task["join_code"]}) for _ in range(clients)]
    n = server.api("GET", f"/api/tasks/{task['id']}/manifest")["num_parameters"]
    rng = np.random.default_rng(0)
    bodies = [rng.normal(0, 0.05, n).astype("<f4").tobytes() for _ in range(4)]
    result = LoadResult(clients, seconds)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    sent = [0]

    def worker(i: int) -> None:
        me = joined[i]
        port = servers[i % len(servers)].port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        base = 0
        while time.monotonic() < deadline:
            with lock:
                if sent[0] >= max_requests:
                    return
                sent[0] += 1
            headers = {"Authorization": f"Bearer {me['token']}", "X-WebFL-Base-Version": str(base),
                       "X-WebFL-Samples": "20", "Idempotency-Key": uuid.uuid4().hex,
                       "Content-Type": "application/octet-stream"}
            t = time.perf_counter()
            try:
                conn.request("POST", f"/api/tasks/{task['id']}/updates", body=bodies[i % 4], headers=headers)
                r = conn.getresponse()
                payload = r.read()
                elapsed = time.perf_counter() - t
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    result.errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            if r.status != 201:
                with lock:
                    result.errors.append(f"HTTP {r.status}: {payload[:200]!r}")
                continue
            ack = json.loads(payload)
            base = ack["current_version"]
            with lock:
                result.acks.append((me["client_id"], ack, elapsed))
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    result.seconds = time.monotonic() - started
    return result


def reconcile(server, task: dict, result: LoadResult) -> list[str]:
    """Every acknowledgement must be in the server's history, exactly once, from that client."""
    history = server.api("GET", f"/api/tasks/{task['id']}/metrics")
    by_version = {v["version"]: v["updates"] for v in history["versions"]}
    problems = []
    seen = set()
    for client_id, ack, _ in result.acks:
        v = ack["applied_version"]
        if ack["status"] != "applied" or v is None:
            problems.append(f"ack not applied: {ack}")
            continue
        if v in seen:
            problems.append(f"two acks for version {v}")
        seen.add(v)
        if [u["client_id"] for u in by_version.get(v, [])] != [client_id]:
            problems.append(f"version {v} does not hold the update of {client_id}")
    return problems


def summary(result: LoadResult, problems: list[str]) -> str:
    lat = [a[2] for a in result.acks]
    return (f"{result.clients} concurrent clients, {result.seconds:.0f} s: {len(result.acks)} acknowledged updates = "
            f"{result.rate:.1f} updates/s; latency p50 {1e3 * result.latency(0.5):.0f} ms, "
            f"p99 {1e3 * result.latency(0.99):.0f} ms, mean {1e3 * statistics.mean(lat) if lat else 0:.0f} ms; "
            f"errors {len(result.errors)}; lost or duplicated acknowledged updates {len(problems)}")
