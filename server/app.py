"""The app factory: wires storage, tasks, updates and evaluation to the blueprints.

It only wires: no thread starts and no stored work resumes here. Background work (round
deadlines, evaluation, bundle builds, recovery) starts in exactly one place,
:func:`server.background.start`, called by the process that serves (the gunicorn worker).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Flask

from . import admin_api, errors, openapi, pages, participant_api, study_api
from .client_wheel import build_wheel
from .config import from_environment
from .evaluation import Evaluator
from .locks import TaskLocks
from .ratelimit import RateLimiter
from .services import Services
from .storage import open_storage
from .tasks import TaskStore
from .updates import UpdateService


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: settings from ``WEBFL_*`` (or ``test_config``), state under DATA_DIR."""
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(from_environment(test_config))
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPDATE_BYTES"]
    data_dir = Path(app.config["DATA_DIR"])
    storage = open_storage(data_dir, app.config["DATABASE_URL"])
    db, params = storage.db, storage.params
    locks = TaskLocks(db)
    tasks = TaskStore(storage, data_dir, locks, Path(app.config["EXTENSIONS_DIR"]))
    evaluator = Evaluator(tasks, data_dir)
    updates = UpdateService(tasks, locks, on_new_version=evaluator.schedule)
    wheel = build_wheel()
    app.extensions["webfl"] = Services(
        db=db, storage=storage, params=params, locks=locks, tasks=tasks, updates=updates, evaluator=evaluator,
        join_limiter=RateLimiter(app.config["JOINS_PER_MINUTE"]),
        client_wheel=wheel, client_wheel_etag=hashlib.sha256(wheel).hexdigest())
    errors.register(app, db.data_errors)
    pages.add_isolation_headers(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(participant_api.bp)
    app.register_blueprint(admin_api.bp)
    app.register_blueprint(study_api.bp)
    app.register_blueprint(openapi.bp)
    return app
