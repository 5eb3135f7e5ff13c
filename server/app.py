"""The app factory."""
from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Flask

from . import errors, pages, participant_api
from .client_wheel import build_wheel
from .config import from_environment
from .db import Database
from .tasks import TaskStore


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: settings from ``WEBFL_*`` (or ``test_config``), state under DATA_DIR."""
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(from_environment(test_config))
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPDATE_BYTES"]
    data_dir = Path(app.config["DATA_DIR"])
    db = Database(data_dir / "webfl.sqlite3")
    wheel = build_wheel()
    app.extensions["webfl"] = {
        "db": db,
        "tasks": TaskStore(db, data_dir),
        "client_wheel": wheel,
        "client_wheel_etag": hashlib.sha256(wheel).hexdigest(),
    }
    errors.register(app)
    pages.add_isolation_headers(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(participant_api.bp)
    return app
