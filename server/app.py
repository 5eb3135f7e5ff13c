"""The app factory: wires storage, tasks, updates and evaluation to the blueprints."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from flask import Flask

from . import admin_api, errors, openapi, pages, participant_api
from .client_wheel import build_wheel
from .config import from_environment
from .db import Database
from .evaluation import Evaluator
from .paramstore import ParamStore
from .tasks import TaskStore
from .updates import UpdateService


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: settings from ``WEBFL_*`` (or ``test_config``), state under DATA_DIR.

    Starting restores everything: interrupted bundle builds restart, and updates that
    were acknowledged but not yet merged are merged.
    """
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(from_environment(test_config))
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPDATE_BYTES"]
    data_dir = Path(app.config["DATA_DIR"])
    db = Database(data_dir / "webfl.sqlite3")
    params = ParamStore(data_dir / "params")
    tasks = TaskStore(db, data_dir, params, Path(app.config["EXTENSIONS_DIR"]))
    evaluator = Evaluator(tasks, data_dir)
    updates = UpdateService(tasks, params, on_new_version=evaluator.schedule)
    wheel = build_wheel()
    app.extensions["webfl"] = {
        "db": db, "params": params, "tasks": tasks, "updates": updates, "evaluator": evaluator,
        "client_wheel": wheel, "client_wheel_etag": hashlib.sha256(wheel).hexdigest(),
    }
    tasks.resume_builds()
    updates.recover()
    if app.config["TICK_SECONDS"] > 0:
        _start_ticker(updates, app.config["TICK_SECONDS"])
    errors.register(app)
    pages.add_isolation_headers(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(participant_api.bp)
    app.register_blueprint(admin_api.bp)
    app.register_blueprint(openapi.bp)
    return app


def _start_ticker(updates: UpdateService, seconds: float) -> None:
    """Close synchronous rounds at their deadline even when no request arrives."""
    def loop() -> None:
        while not stop.wait(seconds):
            try:
                updates.tick()
            except Exception as exc:  # never let the ticker die silently
                print(f"webfl: round ticker: {exc}", flush=True)

    stop = threading.Event()
    threading.Thread(target=loop, name="round-ticker", daemon=True).start()
