"""The admin API: create and edit tasks, upload validation sets, manage participants."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from .auth import require_admin
from .errors import APIError
from .schemas import TaskCreateBody, TaskEditBody, VersionQuery, parse, parse_json
from .services import services

bp = Blueprint("admin_api", __name__, url_prefix="/api/admin")


@bp.before_request
def _admin_only():
    require_admin(services().db, services().tasks)


def _detail(task) -> dict:
    s = services()
    out = task.admin()
    try:
        out["version"] = s.tasks.current_version(task.id).version
    except APIError:
        out["version"] = None
    out["has_validation_set"] = s.evaluator.has_validation(task.id)
    out["join_path"] = f"/?join={task.join_code}"
    return out


@bp.get("/choices")
def choices():
    """Models, aggregators and task settings for the form: names, bounds, defaults and help
    all come from the declarations the server validates with."""
    from export.models import MODELS

    from . import forms
    from .taskconfig import defaults

    models = [{"name": m.name, "description": m.description, "advice": m.advice,
               "suggested_lr": m.suggested_lr, "max_train_blocks": m.max_train_blocks,
               "input": {"color": m.preprocessing.color, "size": list(m.preprocessing.size)}}
              for m in MODELS.values()]
    from flask import current_app

    from .extension_catalog import catalog

    return jsonify({"models": models, "aggregators": forms.aggregators(), "settings": forms.task_settings(),
                    "extensions": catalog(current_app.config["EXTENSIONS_DIR"]), "defaults": defaults()})


@bp.get("/tasks")
def list_tasks():
    return jsonify({"tasks": [_detail(t) for t in services().tasks.list()]})


@bp.post("/tasks")
def create_task():
    body = parse_json(TaskCreateBody, request.get_data(cache=False))
    task = services().tasks.create(body.title, body.config)
    response = jsonify(_detail(task))
    response.status_code = 201
    return response


@bp.get("/tasks/<task_id>")
def get_task(task_id: str):
    return jsonify(_detail(services().tasks.get(task_id)))


@bp.patch("/tasks/<task_id>")
def edit_task(task_id: str):
    body = parse_json(TaskEditBody, request.get_data(cache=False))
    task = services().tasks.update(task_id, body.title, body.config)
    return jsonify(_detail(task))


@bp.post("/tasks/<task_id>/join-code")
def rotate_join_code(task_id: str):
    """A new join code: the old link and QR code stop working; members keep their tokens."""
    return jsonify(_detail(services().tasks.rotate_join_code(task_id)))


@bp.get("/tasks/<task_id>/clients")
def clients(task_id: str):
    """Participants with their contributions and any quarantined updates."""
    s = services()
    s.tasks.get(task_id)
    return jsonify({"clients": s.tasks.clients(task_id), "quarantined": s.storage.updates.quarantined(task_id)})


@bp.post("/tasks/<task_id>/clients/<client_id>/block")
def block_client(task_id: str, client_id: str):
    """Block a participant: its token stops working at once; its waiting updates are dropped."""
    services().tasks.get(task_id)
    return jsonify(services().tasks.block(task_id, client_id))


@bp.put("/tasks/<task_id>/validation")
def upload_validation(task_id: str):
    """Body: a zip (one folder per class) or an .npz with ``images`` and ``labels``.

    Bodies above WEBFL_MAX_UPDATE_BYTES are refused (413) before they are read."""
    services().tasks.get(task_id)
    data = request.get_data(cache=False)
    if not data:
        raise APIError("the body is empty; send the zip or .npz file as the request body")
    return jsonify(services().evaluator.store_validation(task_id, data))


@bp.get("/tasks/<task_id>/download")
def download(task_id: str):
    """The global model (newest, or ``?version=N``) as ``?format=onnx`` or ``?format=pytorch``."""
    from export.download import to_onnx, to_state_dict

    tasks = services().tasks
    fmt = request.args.get("format", "onnx")
    if fmt not in ("onnx", "pytorch"):
        raise APIError("format must be onnx or pytorch")
    v = tasks.kept_version(task_id, parse(VersionQuery, request.args, "query").version)
    manifest = tasks.manifest(task_id)
    params = tasks.params.get(v.params_sha256)
    data = to_onnx(manifest, params) if fmt == "onnx" else to_state_dict(manifest, params)
    name = f"webfl-{task_id}-v{v.version}.{'onnx' if fmt == 'onnx' else 'pt'}"
    return Response(data, mimetype="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "X-WebFL-Version": str(v.version)})
