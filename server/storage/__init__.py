"""Every SQL statement the server runs, one module per table, on either backend.

The services (tasks, updates, evaluation, metrics) call these methods and never write SQL
themselves. Two backends run the same statements: the embedded default (SQLite in WAL mode
under the data dir, :mod:`server.db`, with parameter vectors as files) and PostgreSQL
(:mod:`.postgres`, chosen by ``WEBFL_DATABASE_URL``, with parameters, bundles and validation
sets in the database too). A method that may take part in a larger transaction accepts
``conn``: the connection of ``Storage.transaction()``; without it, it runs on its own.
"""
from __future__ import annotations

from pathlib import Path

from ..db import Database
from ..paramstore import ParamStore
from .clients import Client, ClientsTable
from .evaluations import EvaluationsTable
from .interactions import InteractionsTable
from .tasks import Task, TasksTable
from .updates import UpdatesTable
from .versions import Version, VersionsTable


# Every table, parents first (the order a copy inserts them in), with its key columns.
TABLES = (("settings", "key"), ("tasks", "id"), ("clients", "id"), ("versions", "task_id, version"),
          ("updates", "id"), ("evaluations", "task_id, version"), ("study_consents", "client_id"),
          ("interactions", "id"))


class Storage:
    """The tables, the parameter vectors (``params``) and, with PostgreSQL, the shared files
    (``files``: bundles and validation sets; None for the embedded backend, which keeps
    them under the data dir)."""

    def __init__(self, db, params, data_dir: Path, files=None) -> None:
        self.db = db
        self.params = params
        self.data_dir = data_dir
        self.files = files
        self.tasks = TasksTable(db)
        self.clients = ClientsTable(db)
        self.versions = VersionsTable(db)
        self.updates = UpdatesTable(db)
        self.evaluations = EvaluationsTable(db)
        self.interactions = InteractionsTable(db)

    def transaction(self):
        return self.db.transaction()

    def close(self) -> None:
        self.db.close()

    def bundle_dir(self, task_id: str, bundle_sha: str | None) -> Path:
        """Where a task's live bundle is read from: its directory under the data dir, or
        (PostgreSQL) the published files unpacked into the local cache."""
        found = self.files.local_dir(f"bundle/{bundle_sha}") if self.files is not None and bundle_sha else None
        return found or self.data_dir / "bundles" / task_id

    def validation_path(self, task_id: str) -> Path:
        """Where a task's validation set is read from (the file may not exist)."""
        found = self.files.local_file(f"validation/{task_id}", ".npz") if self.files is not None else None
        return found or self.data_dir / "validation" / f"{task_id}.npz"

    def rows(self, table: str) -> list[dict]:
        """Every row of one table in key order (for copies between backends and for tests)."""
        key = dict(TABLES)[table]
        return [dict(r) for r in self.db.connect().execute(f"SELECT * FROM {table} ORDER BY {key}")]

    def insert_rows(self, table: str, rows: list[dict], conn) -> None:
        if rows:
            cols = list(rows[0])
            conn.executemany(f"INSERT INTO {table}({', '.join(cols)}) VALUES({', '.join('?' for _ in cols)})",
                             [tuple(r[c] for c in cols) for r in rows])

    def params_in_use(self, sha: str, conn=None) -> bool:
        """Whether a kept version or a waiting update still needs this parameter file."""
        return (conn or self.db.connect()).execute(
            "SELECT 1 FROM versions WHERE params_sha256=? AND params_kept=1 UNION ALL "
            "SELECT 1 FROM updates WHERE params_sha256=? AND status IN ('pending', 'quarantined') LIMIT 1",
            (sha, sha)).fetchone() is not None

    def referenced_params(self, conn=None) -> set[str]:
        """Every parameter file a row still refers to (the rest are a crash's leftovers)."""
        return {r[0] for r in (conn or self.db.connect()).execute(
            "SELECT params_sha256 FROM versions WHERE params_kept=1 UNION "
            "SELECT params_sha256 FROM updates WHERE status IN ('pending', 'quarantined')")}


def open_storage(data_dir: Path, database_url: str = "") -> Storage:
    """PostgreSQL when ``database_url`` is set (``postgresql://user:password@host:port/db``),
    else the embedded SQLite file and parameter files under ``data_dir``."""
    if database_url:
        from .files import FilesTable
        from .params import ParamsTable
        from .postgres import PostgresDatabase

        db = PostgresDatabase(database_url)
        return Storage(db, ParamsTable(db), data_dir, FilesTable(db, data_dir / "cache"))
    return Storage(Database(data_dir / "webfl.sqlite3"), ParamStore(data_dir / "params"), data_dir)


__all__ = ["Client", "Storage", "Task", "Version", "open_storage"]
