"""The history of a task as JSON: versions, who fed them, with what weight, how they score.

Admins see every update. A participant sees, per version, how many updates fed it and
their mean staleness, and the details (name, images, metrics) of its own updates only:
other participants' names, ids and sample counts are theirs.
"""
from __future__ import annotations

import json


def task_metrics(db, tasks, task_id: str, since: int = -1, viewer: str | None = None) -> dict:
    """Everything after version ``since``; ``viewer`` is the participant asking (None: admin)."""
    conn = db.connect()
    versions = conn.execute(
        "SELECT version, created, kind FROM versions WHERE task_id=? AND version>? ORDER BY version",
        (task_id, since)).fetchall()
    updates = conn.execute(
        "SELECT u.applied_version, u.client_id, c.name, u.staleness, u.weight, u.num_samples, u.metrics, "
        "u.base_version, u.received FROM updates u JOIN clients c ON c.id = u.client_id "
        "WHERE u.task_id=? AND u.status='applied' AND u.applied_version>? ORDER BY u.id", (task_id, since)).fetchall()
    evaluations = {r["version"]: r for r in conn.execute(
        "SELECT * FROM evaluations WHERE task_id=? AND version>?", (task_id, since))}
    by_version: dict[int, list] = {}
    for u in updates:
        by_version.setdefault(u["applied_version"], []).append({
            "client_id": u["client_id"], "client": u["name"], "base_version": u["base_version"],
            "staleness": u["staleness"], "weight": u["weight"], "samples": u["num_samples"],
            "metrics": json.loads(u["metrics"]), "received": u["received"]})
    out = []
    for v in versions:
        e = evaluations.get(v["version"])
        fed = by_version.get(v["version"], [])
        entry = {"version": v["version"], "created": v["created"], "kind": v["kind"],
                 "contributors": len(fed),
                 "mean_staleness": sum(u["staleness"] for u in fed) / len(fed) if fed else None,
                 "updates": fed if viewer is None else [u for u in fed if u["client_id"] == viewer],
                 "evaluation": None if e is None else {
                     "accuracy": e["accuracy"], "loss": e["loss"], "per_class": json.loads(e["per_class"]),
                     "confusion": json.loads(e["confusion"]), "samples": e["samples"]}}
        out.append(entry)
    counts = conn.execute(
        "SELECT status, COUNT(*) AS n FROM updates WHERE task_id=? GROUP BY status", (task_id,)).fetchall()
    task = tasks.get(task_id)
    return {"task_id": task_id, "classes": task.config["classes"],
            "aggregator": task.config["aggregator"],
            "current_version": versions[-1]["version"] if versions else tasks.current_version(task_id).version,
            "updates": {r["status"]: r["n"] for r in counts},
            "clients": conn.execute("SELECT COUNT(*) FROM clients WHERE task_id=?", (task_id,)).fetchone()[0],
            "versions": out}
