"""The participant API: join a task, fetch its model, send updates, read its metrics."""
from __future__ import annotations

import os

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory

from .auth import require_task_access
from .errors import NotFound
from .metrics import task_metrics
from .schemas import JoinBody, RenameBody, SinceQuery, VersionQuery, parse, parse_json
from .services import services
from .updates import decode_body, parse_meta

bp = Blueprint("participant_api", __name__, url_prefix="/api")


def _public(task) -> dict:
    """What participants see of a task, with its extensions described in plain words."""
    from .extension_catalog import describe

    info = task.public()
    info["extensions"] = describe(info["extensions"], current_app.config["EXTENSIONS_DIR"])
    return info


def _access(task_id: str, allow_admin: bool = True):
    s = services()
    return require_task_access(s.db, s.tasks, task_id, allow_admin)


@bp.get("/health")
def health():
    """Up, which storage backend, and whether this process runs the background work."""
    background = current_app.extensions.get("webfl-background")
    return jsonify({"status": "ok", "storage": services().db.kind, "pid": os.getpid(),
                    "runs_background": bool(background and background.lease is not None)})


@bp.get("/join/<code>")
def preview(code: str):
    """What a join link shows before joining: the task, no token needed."""
    return jsonify(_public(services().tasks.by_join_code(code)))


@bp.get("/join/<code>/qr.svg")
def join_qr(code: str):
    """A QR code of the join link (segno, a well-kept pure-Python QR library). Public:
    it shows nothing the code itself does not."""
    import io

    import segno

    task = services().tasks.by_join_code(code)
    link = f"{request.host_url.rstrip('/')}/?join={task.join_code}"
    buf = io.BytesIO()
    segno.make(link, error="m").save(buf, kind="svg", scale=6, border=2, title=f"Join {task.title}")
    response = Response(buf.getvalue(), mimetype="image/svg+xml")
    response.cache_control.max_age = 3600
    return response


@bp.post("/join")
def join():
    """Join with a code; limited per address (``WEBFL_JOINS_PER_MINUTE``)."""
    body = parse_json(JoinBody, request.get_data(cache=False))
    s = services()
    s.join_limiter.hit(request.remote_addr or "unknown", "joins from this address")
    client, token, task = s.tasks.join(body.code, body.name)
    response = jsonify({"task_id": task.id, "client_id": client.id, "name": client.name, "token": token,
                        "task": _public(task)})
    response.status_code = 201
    return response


@bp.get("/tasks/<task_id>")
def get_task(task_id: str):
    _access(task_id)
    tasks = services().tasks
    info = _public(tasks.get(task_id))
    try:
        info["version"] = tasks.current_version(task_id).version
    except NotFound:
        info["version"] = None
    # no ETag on purpose: the page asks this every round, and the browser's revalidation of a
    # cached copy made the ask slower than a fresh answer (measured for issue 14)
    return jsonify(info)


@bp.patch("/tasks/<task_id>/me")
def rename(task_id: str):
    """A participant changes the name the organiser sees."""
    s = services()
    client = require_task_access(s.db, s.tasks, task_id, allow_admin=False)
    body = parse_json(RenameBody, request.get_data(cache=False))
    return jsonify({"client_id": client.id, "name": s.tasks.rename(client, body.name)})


@bp.get("/tasks/<task_id>/manifest")
def manifest(task_id: str):
    _access(task_id)
    response = jsonify(services().tasks.manifest(task_id))
    response.add_etag()
    response.cache_control.no_cache = True
    return response.make_conditional(request)


@bp.get("/tasks/<task_id>/bundle/<name>")
def bundle_file(task_id: str, name: str):
    _access(task_id)
    tasks = services().tasks
    files = tasks.manifest(task_id)["files"]
    if name not in files:  # also refuses any path trickery: only listed names are served
        raise NotFound(f"the bundle has no file {name[:80]!r}", sorted(files))
    response = send_from_directory(tasks.bundle_dir(task_id), name, conditional=True, etag=False)
    response.set_etag(files[name]["sha256"])
    response.cache_control.no_cache = True
    return response.make_conditional(request)


@bp.get("/tasks/<task_id>/model")
def global_model(task_id: str):
    """The global parameters (newest, or ``?version=N``) as little-endian float32 bytes."""
    _access(task_id)
    tasks = services().tasks
    v = tasks.kept_version(task_id, parse(VersionQuery, request.args, "query").version)
    response = Response(tasks.params.get_bytes(v.params_sha256), mimetype="application/octet-stream")
    response.headers["X-WebFL-Version"] = str(v.version)
    response.headers["Access-Control-Expose-Headers"] = "X-WebFL-Version"
    response.set_etag(v.params_sha256)
    response.cache_control.no_cache = True
    return response.make_conditional(request)


@bp.post("/tasks/<task_id>/updates")
def post_update(task_id: str):
    """One client update: the new local parameters (float32 LE) or, with ``X-WebFL-Encoding:
    q8-delta``, the quantised change from the base version; optionally gzip."""
    client = _access(task_id, allow_admin=False)
    s = services()
    task = s.tasks.get(task_id)
    manifest = s.tasks.manifest(task_id)
    meta = parse_meta(request.headers)
    vector = decode_body(request.stream, request.content_length,
                         request.headers.get("Content-Encoding", "").strip().lower(), manifest["num_parameters"],
                         meta.encoding)
    ack = s.updates.submit(task, client, meta, vector)
    response = jsonify(ack)
    response.status_code = 200 if ack["duplicate"] else 201
    return response


@bp.get("/tasks/<task_id>/metrics")
def metrics(task_id: str):
    """The admin sees every update; a participant sees aggregates and its own updates."""
    client = _access(task_id)
    since = parse(SinceQuery, request.args, "query").since
    s = services()
    return jsonify(task_metrics(s.storage, s.tasks, task_id, since, viewer=None if client is None else client.id))
