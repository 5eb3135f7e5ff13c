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


@bp.get("/choices")
def choices():
    """Models and aggregators for the task form, with their explanations and defaults."""
    from export.models import MODELS

    from .strategies import describe_all
    from .taskconfig import DEFAULTS

    models = [{"name": m.name, "description": m.description, "max_train_blocks": m.max_train_blocks,
               "input": {"color": m.preprocessing.color, "size": list(m.preprocessing.size)}}
              for m in MODELS.values()]
    return jsonify({"models": models, "aggregators": describe_all(), "defaults": DEFAULTS})


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


@bp.get("/tasks/<task_id>/download")
def download(task_id: str):
    """The global model (newest, or ``?version=N``) as ``?format=onnx`` or ``?format=pytorch``."""
    from flask import Response

    from export.download import to_onnx, to_state_dict

    tasks = _ext()["tasks"]
    fmt = request.args.get("format", "onnx")
    if fmt not in ("onnx", "pytorch"):
        raise APIError("format must be onnx or pytorch")
    v = tasks.kept_version(task_id, request.args.get("version"))
    manifest = tasks.manifest(task_id)
    params = tasks.params.get(v.params_sha256)
    data = to_onnx(manifest, params) if fmt == "onnx" else to_state_dict(manifest, params)
    name = f"webfl-{task_id}-v{v.version}.{'onnx' if fmt == 'onnx' else 'pt'}"
    return Response(data, mimetype="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "X-WebFL-Version": str(v.version)})
