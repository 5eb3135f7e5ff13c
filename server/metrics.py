"""The history of a task as JSON: versions, who fed them, with what weight, how they score.

Admins see every update. A participant sees, per version, how many updates fed it and
their mean staleness, and the details (name, images, metrics) of its own updates only:
other participants' names, ids and sample counts are theirs.
"""
from __future__ import annotations

import json

from .storage import Storage


def task_metrics(storage: Storage, tasks, task_id: str, since: int = -1, viewer: str | None = None) -> dict:
    """Everything after version ``since``; ``viewer`` is the participant asking (None: admin)."""
    versions = storage.versions.since(task_id, since)
    evaluations = storage.evaluations.since(task_id, since)
    by_version: dict[int, list] = {}
    for u in storage.updates.applied_since(task_id, since):
        by_version.setdefault(u["applied_version"], []).append({
            "client_id": u["client_id"], "client": u["name"], "base_version": u["base_version"],
            "staleness": u["staleness"], "weight": u["weight"], "samples": u["num_samples"],
            "metrics": json.loads(u["metrics"]), "received": u["received"]})
    out = []
    for v in versions:
        fed = by_version.get(v["version"], [])
        out.append({"version": v["version"], "created": v["created"], "kind": v["kind"],
                    "contributors": len(fed),
                    "mean_staleness": sum(u["staleness"] for u in fed) / len(fed) if fed else None,
                    "updates": fed if viewer is None else [u for u in fed if u["client_id"] == viewer],
                    "evaluation": evaluations.get(v["version"])})
    task = tasks.get(task_id)
    return {"task_id": task_id, "classes": task.config["classes"],
            "aggregator": task.config["aggregator"],
            "current_version": versions[-1]["version"] if versions else tasks.current_version(task_id).version,
            "updates": storage.updates.status_counts(task_id),
            "clients": storage.clients.count(task_id),
            "versions": out}
