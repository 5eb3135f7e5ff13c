"""``webfl run``: prepare the embedded default and serve the app with gunicorn.

Process roles: the gunicorn master only prepares the database (admin token, the demo
task's row) and forks; it starts no thread and builds no bundle. Each worker builds its app;
the worker holding the background lease (:mod:`server.background`) runs recovery, bundle
builds (the demo's included), evaluation and round deadlines. With the embedded SQLite
default there is one worker (its locks are process-local); with ``WEBFL_DATABASE_URL`` there
may be several, and several ``webfl run`` processes on several machines, because the locks
that order updates are PostgreSQL's. gunicorn hands the app each request after its headers,
so an oversized update is refused from its Content-Length without the body being read.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import click
from gunicorn.app.base import BaseApplication

from .auth import ensure_admin_token
from .config import SETTINGS, from_environment


@click.command("run", epilog="\b\nsettings (environment variables):\n" + "\n".join(
    f"  {s.env:24} {s.help} (default: {s.default})" for s in SETTINGS)
    + "\n\n\bexamples:\n  WEBFL_PORT=8001 WEBFL_DATA_DIR=/tmp/webfl webfl run\n"
    "  WEBFL_DATABASE_URL=postgresql://webfl:secret@db:5432/webfl WEBFL_WORKERS=4 webfl run")
def run_command() -> None:
    """Start the server (SQLite under the data dir, or PostgreSQL; a ready demo task).

    By default state lives in SQLite and parameter files under the data directory; with
    WEBFL_DATABASE_URL it lives in PostgreSQL and any number of processes can serve it. A
    demo task on handwritten digits is created on first start. Settings come from the
    environment."""
    sys.exit(run(argparse.Namespace()))


@click.command("reset-admin-token", epilog="\b\nexample:\n  WEBFL_DATA_DIR=instance webfl reset-admin-token")
def reset_admin_token_command() -> None:
    """Replace the admin token and print the new one.

    The admin token is stored only as a hash, so it cannot be shown again; this makes a new
    one (the old one stops working). It only touches the database, so it is safe while the
    server runs."""
    sys.exit(reset_admin_token(argparse.Namespace()))


def _storage():
    from .storage import open_storage

    cfg = from_environment()
    return open_storage(Path(cfg["DATA_DIR"]), cfg["DATABASE_URL"])


def reset_admin_token(args: argparse.Namespace) -> int:
    from .auth import ADMIN_HASH_KEY, hash_token, new_token

    token = new_token()
    _storage().db.set_setting(ADMIN_HASH_KEY, hash_token(token))
    print(f"webfl: new admin token: {token}")
    return 0


def run(args: argparse.Namespace) -> int:
    from .tasks import demo_task_row

    cfg = from_environment()
    if cfg["WORKERS"] > 1 and not cfg["DATABASE_URL"]:
        print("webfl: WEBFL_WORKERS above 1 needs WEBFL_DATABASE_URL (the embedded SQLite default is one process)",
              file=sys.stderr)
        return 2
    storage = _storage()
    token = ensure_admin_token(storage.db, cfg["ADMIN_TOKEN"])
    demo = demo_task_row(storage)
    url = f"http://{cfg['HOST']}:{cfg['PORT']}/"
    where = "PostgreSQL" if cfg["DATABASE_URL"] else f"SQLite under {cfg['DATA_DIR']}"
    print(f"webfl: serving on {url} (state in {where}, {cfg['WORKERS']} worker process(es))", flush=True)
    print(f"webfl: demo task {demo.title!r}: open {url}?join={demo.join_code} (join code {demo.join_code})")
    print(f"webfl: admin page {url}admin")
    if token and cfg["ADMIN_TOKEN"]:
        print("webfl: admin token taken from WEBFL_ADMIN_TOKEN")
    elif token:
        print(f"webfl: admin token (shown once, stored only as a hash): {token}")
    else:
        print("webfl: admin token was shown at first start (`webfl reset-admin-token` makes a new one)")
    sys.stdout.flush()
    storage.close()
    options = {"bind": f"{cfg['HOST']}:{cfg['PORT']}", "workers": cfg["WORKERS"], "worker_class": "gthread",
               "threads": cfg["THREADS"], "timeout": 120, "graceful_timeout": 5,
               "accesslog": None, "errorlog": "-", "loglevel": "warning",
               "post_worker_init": _start_background}
    _Gunicorn(options).run()
    return 0


def _start_background(worker) -> None:
    """In the worker, once its app is loaded: the one place background work starts."""
    from .background import start

    start(worker.wsgi)


class _Gunicorn(BaseApplication):
    """gunicorn run from Python with our app object and options (no config file).
    The app is built in the worker (``load`` runs after the fork), never in the master."""

    def __init__(self, options: dict) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from . import create_app

        return create_app()
