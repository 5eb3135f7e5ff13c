"""The ``evaluations`` table: each version's score on the admin's validation set."""
from __future__ import annotations

import json
import time

from ..db import Database


class EvaluationsTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, task_id: str, result: dict) -> None:
        self.db.connect().execute(
            "INSERT INTO evaluations(task_id, version, accuracy, loss, per_class, confusion, samples, created) "
            "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT (task_id, version) DO UPDATE SET accuracy=excluded.accuracy, "
            "loss=excluded.loss, per_class=excluded.per_class, confusion=excluded.confusion, "
            "samples=excluded.samples, created=excluded.created",
            (task_id, result["version"], result["accuracy"], result["loss"], json.dumps(result["per_class"]),
             json.dumps(result["confusion"]), result["samples"], time.time()))

    def since(self, task_id: str, since: int) -> dict[int, dict]:
        rows = self.db.connect().execute("SELECT * FROM evaluations WHERE task_id=? AND version>?", (task_id, since))
        return {r["version"]: {"accuracy": r["accuracy"], "loss": r["loss"], "per_class": json.loads(r["per_class"]),
                               "confusion": json.loads(r["confusion"]), "samples": r["samples"]} for r in rows}

    def latest_version(self, task_id: str) -> int | None:
        return self.db.connect().execute("SELECT MAX(version) FROM evaluations WHERE task_id=?",
                                         (task_id,)).fetchone()[0]
