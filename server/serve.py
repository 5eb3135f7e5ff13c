"""``webfl run``: prepare the embedded default and serve the app with waitress."""
from __future__ import annotations

import argparse
import sys

from .auth import ensure_admin_token
from .config import SETTINGS, from_environment


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
    import waitress

    from . import create_app

    app = create_app()
    ext = app.extensions["webfl"]
    token = ensure_admin_token(ext["db"])
    demo = ext["tasks"].ensure_demo()
    cfg = app.config
    url = f"http://{cfg['HOST']}:{cfg['PORT']}/"
    print(f"webfl: serving on {url}", flush=True)
    print(f"webfl: demo task {demo.title!r}: {url}?task={demo.id} (join code {demo.join_code}, bundle {demo.bundle_status})")
    if token:
        print(f"webfl: admin token (shown once, stored only as a hash): {token}")
    else:
        print("webfl: admin token was shown at first start (`webfl reset-admin-token` makes a new one)")
    sys.stdout.flush()
    waitress.serve(app, host=cfg["HOST"], port=cfg["PORT"], threads=cfg["THREADS"], ident="webfl",
                   max_request_body_size=cfg["MAX_UPDATE_BYTES"])
    return 0
