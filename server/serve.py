"""``webfl run``: prepare the embedded default and serve the app with gunicorn.

One gunicorn worker process with threads: the per-task locks that order updates live
in that process. gunicorn hands the app each request after its headers, so an
oversized update is refused from its Content-Length without the body being read.
"""
from __future__ import annotations

import argparse
import sys

from gunicorn.app.base import BaseApplication

from .auth import ensure_admin_token
from .config import SETTINGS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="start the server (SQLite under the data dir, a ready demo task)",
        description="Start webfl on an embedded default: state in SQLite under the data directory "
                    "and a ready demo task on handwritten digits. Settings come from the environment:\n"
                    + "\n".join(f"  {s.env:22} {s.help} (default: {s.default})" for s in SETTINGS),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=run)
    r = sub.add_parser("reset-admin-token", help="replace the admin token and print the new one",
                       description="The admin token is stored only as a hash, so it cannot be shown "
                                   "again; this makes a new one (the old one stops working).")
    r.set_defaults(func=reset_admin_token)


def reset_admin_token(args: argparse.Namespace) -> int:
    from . import create_app
    from .auth import ADMIN_HASH_KEY, hash_token, new_token

    db = create_app().extensions["webfl"]["db"]
    token = new_token()
    db.set_setting(ADMIN_HASH_KEY, hash_token(token))
    print(f"webfl: new admin token: {token}")
    return 0


def run(args: argparse.Namespace) -> int:
    from . import create_app

    app = create_app()
    ext = app.extensions["webfl"]
    token = ensure_admin_token(ext["db"], app.config["ADMIN_TOKEN"])
    demo = ext["tasks"].ensure_demo()
    cfg = app.config
    url = f"http://{cfg['HOST']}:{cfg['PORT']}/"
    print(f"webfl: serving on {url}", flush=True)
    print(f"webfl: demo task {demo.title!r}: open {url}?join={demo.join_code} (join code {demo.join_code})")
    print(f"webfl: admin page {url}admin")
    if token and app.config["ADMIN_TOKEN"]:
        print("webfl: admin token taken from WEBFL_ADMIN_TOKEN")
    elif token:
        print(f"webfl: admin token (shown once, stored only as a hash): {token}")
    else:
        print("webfl: admin token was shown at first start (`webfl reset-admin-token` makes a new one)")
    sys.stdout.flush()
    # Threads do not survive gunicorn's fork: the worker builds its own app (and threads).
    ext["tasks"].close()
    ext["evaluator"].stop()
    options = {"bind": f"{cfg['HOST']}:{cfg['PORT']}", "workers": 1, "worker_class": "gthread",
               "threads": cfg["THREADS"], "timeout": 120, "graceful_timeout": 5,
               "accesslog": None, "errorlog": "-", "loglevel": "warning"}
    _Gunicorn(create_app, options).run()
    return 0


class _Gunicorn(BaseApplication):
    """gunicorn run from Python with our app object and options (no config file)."""

    def __init__(self, factory, options: dict) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.factory()
