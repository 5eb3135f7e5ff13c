"""The participant API: task info, the bundle, and the current global model."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory

from .errors import NotFound
from .tasks import TaskStore

bp = Blueprint("participant_api", __name__, url_prefix="/api")


def _tasks() -> TaskStore:
    return current_app.extensions["webfl"]["tasks"]


@bp.get("/health")
def health():
    return jsonify({"status": "ok"})


@bp.get("/tasks")
def list_tasks():
    return jsonify({"tasks": [t.public() for t in _tasks().list()]})


@bp.get("/tasks/<task_id>")
def get_task(task_id: str):
    tasks = _tasks()
    info = tasks.get(task_id).public()
    try:
        info["version"] = tasks.current_version(task_id)[0]
    except NotFound:
        info["version"] = None
    return jsonify(info)


@bp.get("/tasks/<task_id>/manifest")
def manifest(task_id: str):
    response = jsonify(_tasks().manifest(task_id))
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/tasks/<task_id>/bundle/<name>")
def bundle_file(task_id: str, name: str):
    tasks = _tasks()
    files = tasks.manifest(task_id)["files"]
    if name not in files:
        raise NotFound(f"the bundle has no file {name!r}", sorted(files))
    response = send_from_directory(tasks.bundle_dir(task_id), name, conditional=True, etag=False)
    response.set_etag(files[name]["sha256"])
    response.cache_control.no_cache = True
    return response.make_conditional(request)


@bp.get("/tasks/<task_id>/model")
def global_model(task_id: str):
    """The newest global parameters as little-endian float32 bytes."""
    tasks = _tasks()
    version, sha = tasks.current_version(task_id)
    response = Response(tasks.params.get_bytes(sha), mimetype="application/octet-stream")
    response.headers["X-WebFL-Version"] = str(version)
    response.set_etag(sha)
    return response.make_conditional(request)
