"""Every SQL statement the server runs, one module per table (the embedded SQLite backend).

The services (tasks, updates, evaluation, metrics) call these methods and never write SQL
themselves, so another backend (PostgreSQL) implements this one layer. A method that may
take part in a larger transaction accepts ``conn``: the connection of
``Storage.transaction()``; without it, it runs on its own.
"""
from __future__ import annotations

from ..db import Database
from .clients import Client, ClientsTable
from .evaluations import EvaluationsTable
from .tasks import Task, TasksTable
from .updates import UpdatesTable
from .versions import Version, VersionsTable


class Storage:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.tasks = TasksTable(db)
        self.clients = ClientsTable(db)
        self.versions = VersionsTable(db)
        self.updates = UpdatesTable(db)
        self.evaluations = EvaluationsTable(db)

    def transaction(self):
        return self.db.transaction()

    def params_in_use(self, sha: str, conn=None) -> bool:
        """Whether a kept version or a waiting update still needs this parameter file."""
        return (conn or self.db.connect()).execute(
            "SELECT 1 FROM versions WHERE params_sha256=? AND params_kept=1 UNION ALL "
            "SELECT 1 FROM updates WHERE params_sha256=? AND status IN ('pending', 'quarantined') LIMIT 1",
            (sha, sha)).fetchone() is not None

    def referenced_params(self) -> set[str]:
        """Every parameter file a row still refers to (the rest are a crash's leftovers)."""
        return {r[0] for r in self.db.connect().execute(
            "SELECT params_sha256 FROM versions WHERE params_kept=1 UNION "
            "SELECT params_sha256 FROM updates WHERE status IN ('pending', 'quarantined')")}


__all__ = ["Client", "Storage", "Task", "Version"]
