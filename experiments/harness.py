"""Run an experiment: for each run, a fresh server, a task, clients, a budget; then the
baselines; then the report. Everything stays on loopback and stops by itself."""
from __future__ import annotations

import io
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from browser_py.update_encoding import encoded_size

from .headless import image_files
from export.datasets import Dataset, load, official_test
from export.partition import parse

from . import baselines as baseline_mod
from .clients import BrowserClient, PythonClient, TabHost
from .config import Experiment, Run
from .server import ServerProcess

Log = Callable[[str], None]


def split(exp: Experiment) -> tuple[Dataset, Dataset]:
    """The dataset's official test set, or a random held-out part; the rest is shared among clients."""
    data = load(exp.dataset)
    if exp.test_set == "official":
        return data, official_test(exp.dataset)
    order = np.random.default_rng(exp.seed).permutation(len(data))
    n_test = int(round(exp.test_fraction * len(data)))
    return data.subset(order[n_test:]), data.subset(order[:n_test])


def client_parts(exp: Experiment, train: Dataset, clients: int) -> list[np.ndarray]:
    parts = parse(exp.partition, train.labels, clients, exp.seed)
    if exp.samples_per_client:
        rng = np.random.default_rng(exp.seed + 1)
        parts = [np.sort(rng.permutation(p)[: exp.samples_per_client]) for p in parts]
    return parts


def missing_accuracy(confusion: list[list[int]], classes: list[str], missing: list[str]) -> float | None:
    rows = [classes.index(c) for c in missing if c in classes]
    total = sum(sum(confusion[r]) for r in rows)
    return None if total == 0 else sum(confusion[r][r] for r in rows) / total


def _validation_npz(test: Dataset) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, images=test.images, labels=test.labels)
    return buf.getvalue()


def run_one(exp: Experiment, run: Run, train: Dataset, test: Dataset, log: Log) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"webfl-{run.name}-"))
    server = ServerProcess(workdir / "server")
    clients: list = []
    host = None
    try:
        # Simulated participants train far faster than people click: lift the per-participant
        # rate limit unless the config sets one.
        config = {"max_updates_per_minute": 10_000} | dict(exp.task) | run.task | {"aggregator": run.aggregator}
        if run.extensions:
            config["extensions"] = run.extensions
        task = server.create_task(f"{exp.name}: {run.name}", classes=train.classes, **config)
        manifest = server.api("GET", f"/api/tasks/{task['id']}/manifest")
        server.api("PUT", f"/api/admin/tasks/{task['id']}/validation", raw=_validation_npz(test))
        parts = client_parts(exp, train, run.clients.total)
        if run.clients.browser and run.clients.browser_mode == "tabs":
            host = TabHost()  # every browser participant a tab of this one Chromium
        for i, part in enumerate(parts):
            slowdown = run.clients.slowdown[i] if i < len(run.clients.slowdown) else 0.0
            drops = [d for d in run.clients.dropout if d.client == i]
            files = image_files(train.images[part], train.labels[part], train.classes)
            if i < run.clients.browser:
                client = BrowserClient(i, server.url, task["join_code"], files, slowdown, drops, host)
            else:
                client = PythonClient(i, server.url, task["join_code"], files, slowdown, drops)
            client.poison = next((p for p in run.poison if p.client == i), None)
            clients.append(client)
        for c in clients:
            c.start()
            log(f"  {run.name}: {c.kind} client {c.index} joined with {len(parts[c.index])} images")
        t0 = time.monotonic()
        wall0 = time.time()
        for c in clients:
            if isinstance(c, PythonClient):
                c.begin(t0)
        reached = None
        last_report = 0.0
        seconds, versions = exp.budget(run)
        while True:
            elapsed = time.monotonic() - t0
            for c in clients:
                c.poll(elapsed)
            info = server.api("GET", f"/api/tasks/{task['id']}")
            version = info["version"]
            if exp.target_accuracy is not None and reached is None:
                recent = server.api("GET", f"/api/tasks/{task['id']}/metrics?since={max(-1, version - 5)}")
                accs = [v["evaluation"]["accuracy"] for v in recent["versions"] if v["evaluation"]]
                if accs and max(accs) >= exp.target_accuracy:
                    reached = elapsed
            if elapsed - last_report >= 10:
                log(f"  {run.name}: {elapsed:5.0f} s, version {version}")
                last_report = elapsed
            errors = [c.error for c in clients if c.error]
            if errors:
                raise RuntimeError(f"{run.name}: a client failed: {errors[0]}")
            if elapsed >= seconds or version >= versions or (exp.stop_at_target and reached is not None):
                break
            # browser participants start each round when this loop sees the last one ended
            time.sleep(0.2 if run.clients.browser else 0.5)
        events = {f"{c.kind}-{c.index}": c.events for c in clients if c.events}
        for c in clients:
            c.stop()
        clients = []
        metrics = _settled_metrics(server, task["id"])
        result = summarise(exp, run, metrics, manifest, wall0, reached) | {"events": events}
        if exp.task.get("user_study"):
            from . import interactions

            log_lines = server.raw("GET", f"/api/admin/tasks/{task['id']}/study/export?format=jsonl").decode()
            result["interactions"] = interactions.summarise([json.loads(x) for x in log_lines.splitlines()])
            result["interactions_jsonl"] = log_lines
        return result
    except Exception:
        log(server.log()[-3000:])
        raise
    finally:
        for c in clients:
            try:
                c.stop()
            except Exception:
                pass
        if host is not None:
            host.quit()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _settled_metrics(server: ServerProcess, task_id: str, timeout: float = 90) -> dict:
    """The metrics once the newest version has been evaluated (or the wait ran out)."""
    deadline = time.monotonic() + timeout
    while True:
        m = server.api("GET", f"/api/tasks/{task_id}/metrics")
        if m["versions"][-1]["evaluation"] is not None or time.monotonic() > deadline:
            return m
        time.sleep(0.5)


SETTLED = 5  # "where learning settles": the last this many evaluated versions


def settled(values: list[float]) -> dict | None:
    """Mean, spread and range of the last :data:`SETTLED` values (None if there are none)."""
    tail = [v for v in values[-SETTLED:] if v is not None]
    if not tail:
        return None
    return {"mean": float(np.mean(tail)), "std": float(np.std(tail)), "min": float(min(tail)),
            "max": float(max(tail)), "count": len(tail)}


def summarise(exp: Experiment, run: Run, metrics: dict, manifest: dict, wall0: float, reached) -> dict:
    """The run's report. Time zero is when its participants started (the initial version,
    made earlier, sits at 0); "final" is the end of the budget and ``last5`` where learning
    settled, beside the best version and the time to the target."""
    classes = metrics["classes"]
    # bytes on the wire per update, as the run's task encodes them (before any gzip)
    update_bytes = encoded_size((dict(exp.task) | run.task).get("update_encoding", "f32"), manifest["num_parameters"])
    series, updates, timeline = [], 0, []
    for v in metrics["versions"]:
        updates += len(v["updates"])
        at = max(0.0, round(v["created"] - wall0, 3))
        for u in v["updates"]:
            timeline.append({"time": at, "version": v["version"], "client": u["client"],
                             "staleness": u["staleness"]})
        e = v["evaluation"]
        if e is None:
            continue
        point = {"time": at, "version": v["version"], "accuracy": e["accuracy"],
                 "loss": e["loss"], "per_class": e["per_class"],
                 "staleness": (float(np.mean([u["staleness"] for u in v["updates"]])) if v["updates"] else None),
                 "bytes_sent": updates * update_bytes}
        if exp.missing:
            point["missing"] = [missing_accuracy(e["confusion"], classes, m) for m in exp.missing]
        series.append(point)
    contributions: dict[str, int] = {}
    for v in metrics["versions"]:
        for u in v["updates"]:
            contributions[u["client"]] = contributions.get(u["client"], 0) + 1
    last = series[-1] if series else None
    final_eval = next((v["evaluation"] for v in reversed(metrics["versions"]) if v["evaluation"]), None)
    first_hit = None
    if exp.target_accuracy is not None:
        first_hit = next((p for p in series if p["accuracy"] >= exp.target_accuracy), None)
    time_to_target = first_hit and first_hit["time"]
    last5 = settled([p["accuracy"] for p in series])
    missing_last5 = None
    if exp.missing and series:
        missing_last5 = [settled([p["missing"][i] for p in series]) for i in range(len(exp.missing))]
    return {
        "name": run.name, "aggregator": run.aggregator, "extensions": run.extensions,
        "poison": [p.__dict__ for p in run.poison],
        "clients": {"browser": run.clients.browser, "cpython": run.clients.cpython,
                    "browser_mode": run.clients.browser_mode,
                    "chromium_instances": (min(1, run.clients.browser) if run.clients.browser_mode == "tabs"
                                           else run.clients.browser)},
        "series": series, "classes": classes, "contributions": contributions, "timeline": timeline,
        "final": {"version": metrics["current_version"], "accuracy": last and last["accuracy"],
                  "last5": last5, "missing_last5": missing_last5,
                  "best_accuracy": max((p["accuracy"] for p in series), default=None),
                  "missing": last and last.get("missing"), "updates": updates,
                  "bytes_sent": updates * update_bytes, "time": last and last["time"],
                  "time_to_target": time_to_target,
                  "bytes_to_target": first_hit and first_hit["bytes_sent"],
                  "updates_to_target": first_hit and first_hit["bytes_sent"] // update_bytes,
                  "confusion": final_eval and final_eval["confusion"]},
    }


def run_experiment(exp: Experiment, out: Path, log: Log = print) -> dict:
    from . import report

    out.mkdir(parents=True, exist_ok=True)
    train, test = split(exp)
    log(f"{exp.name}: {len(train)} training images for the clients, {len(test)} held out for evaluation")
    results = {"name": exp.name, "config": str(exp.path) if exp.path else None, "experiment": _describe(exp),
               "runs": [], "baselines": {}}
    for run in exp.runs:
        log(f"run {run.name}: {run.clients.browser} browser + {run.clients.cpython} cpython clients, "
            f"aggregator {run.aggregator}")
        results["runs"].append(run_one(exp, run, train, test, log))
        study_log = results["runs"][-1].pop("interactions_jsonl", None)
        if study_log is not None:  # the raw action log beside the report, as the admin would export it
            (out / f"interactions-{run.name}.jsonl").write_text(study_log)
        f = results["runs"][-1]["final"]
        log(f"run {run.name}: version {f['version']}, accuracy {f['accuracy']}")
    if exp.baselines:
        clients = exp.runs[0].clients.total
        results["baselines"] = baseline_mod.run(exp, train, test, client_parts(exp, train, clients), log)
    report.write(results, out)
    return results


def _describe(exp: Experiment) -> dict:
    return {"dataset": exp.dataset, "partition": exp.partition, "test_fraction": exp.test_fraction,
            "samples_per_client": exp.samples_per_client, "task": exp.task, "seconds": exp.seconds,
            "versions": exp.versions, "target_accuracy": exp.target_accuracy, "missing": exp.missing,
            "stop_at_target": exp.stop_at_target, "settled_versions": SETTLED, "seed": exp.seed,
            "test_set": exp.test_set, "reference": exp.reference,
            "run_budgets": {r.name: dict(zip(("seconds", "versions"), exp.budget(r))) for r in exp.runs}}
