"""The services one app is wired with, typed, and the one way blueprints reach them."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .evaluation import Evaluator
from .locks import TaskLocks
from .ratelimit import RateLimiter
from .storage import Storage
from .tasks import TaskStore
from .updates import UpdateService


@dataclass
class Services:
    db: object  # server.db.Database or server.storage.postgres.PostgresDatabase
    storage: Storage
    params: object  # server.paramstore.ParamStore or server.storage.params.ParamsTable
    locks: TaskLocks
    tasks: TaskStore
    updates: UpdateService
    evaluator: Evaluator
    join_limiter: RateLimiter
    client_wheel: bytes
    client_wheel_etag: str


def services() -> Services:
    """The current app's services (inside a request or app context)."""
    return current_app.extensions["webfl"]
