"""The admin API: create and edit tasks, upload validation sets, see participants."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from .auth import require_admin
from .errors import APIError
from .participant_api import json_body

bp = Blueprint("admin_api", __name__, url_prefix="/api/admin")

def _ext() -> dict:
    return current_app.extensions["webfl"]


@bp.before_request
def _admin_only():
    require_admin(_ext()["db"], _ext()["tasks"])


def _detail(task) -> dict:
    ext = _ext()
    out = task.admin()
    try:
        out["version"] = ext["tasks"].current_version(task.id).version
    except APIError:
        out["version"] = None
    out["has_validation_set"] = ext["evaluator"].has_validation(task.id)
    out["join_path"] = f"/?join={task.join_code}"
    return out


@bp.get("/tasks")
def list_tasks():
    return jsonify({"tasks": [_detail(t) for t in _ext()["tasks"].list()]})


@bp.post("/tasks")
def create_task():
    body = json_body()
    task = _ext()["tasks"].create(body.get("title"), body.get("config", {}))
    response = jsonify(_detail(task))
    response.status_code = 201
    return response


@bp.get("/tasks/<task_id>")
def get_task(task_id: str):
    return jsonify(_detail(_ext()["tasks"].get(task_id)))


@bp.patch("/tasks/<task_id>")
def edit_task(task_id: str):
    body = json_body()
    changes = body.get("config", {})
    task = _ext()["tasks"].update(task_id, body.get("title"), changes)
    return jsonify(_detail(task))


@bp.get("/tasks/<task_id>/clients")
def clients(task_id: str):
    _ext()["tasks"].get(task_id)
    return jsonify({"clients": _ext()["tasks"].clients(task_id)})


@bp.put("/tasks/<task_id>/validation")
def upload_validation(task_id: str):
    """Body: a zip (one folder per class) or an .npz with ``images`` and ``labels``.

    Bodies above WEBFL_MAX_UPDATE_BYTES are refused (413) before they are read."""
    _ext()["tasks"].get(task_id)
    data = request.get_data(cache=False)
    if not data:
        raise APIError("the body is empty; send the zip or .npz file as the request body")
    summary = _ext()["evaluator"].store_validation(task_id, data)
    return jsonify(summary)
