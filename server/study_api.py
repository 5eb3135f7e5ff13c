"""User-study routes: a participant answers the notice and sends its action log; the admin
exports the log (see :mod:`server.study`)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from . import study
from .auth import require_admin, require_task_access
from .schemas import ConsentBody, StudyEventsBody, StudyExportQuery, parse, parse_json
from .services import services

bp = Blueprint("study_api", __name__, url_prefix="/api")


def _participant(task_id: str):
    s = services()
    client = require_task_access(s.db, s.tasks, task_id, allow_admin=False)
    task = s.tasks.get(task_id)
    study.require_study(task)
    return client, task


@bp.get("/tasks/<task_id>/study/consent")
def get_consent(task_id: str):
    """This participant's answer to the notice (``agreed`` null: not answered yet)."""
    client, task = _participant(task_id)
    answer = services().storage.interactions.consent(client.id)
    current = answer is not None and answer["notice_sha256"] == study.notice_sha256(task.config)
    return jsonify({"agreed": answer["agreed"] if current else None, "notice": task.config["study_notice"]})


@bp.post("/tasks/<task_id>/study/consent")
def post_consent(task_id: str):
    client, task = _participant(task_id)
    body = parse_json(ConsentBody, request.get_data(cache=False))
    services().storage.interactions.decide(task.id, client.id, body.agreed, study.notice_sha256(task.config))
    return jsonify({"agreed": body.agreed})


@bp.post("/tasks/<task_id>/study/events")
def post_events(task_id: str):
    """A batch of actions from a participant who agreed; resent events are stored once."""
    client, task = _participant(task_id)
    body = parse_json(StudyEventsBody, request.get_data(cache=False))
    result = study.record(services().storage, task, client.id, [e.model_dump() for e in body.events])
    response = jsonify(result)
    response.status_code = 201
    return response


@bp.get("/admin/tasks/<task_id>/study")
def summary(task_id: str):
    """How many agreed and declined, and how many events were recorded."""
    s = services()
    require_admin(s.db, s.tasks)
    task = s.tasks.get(task_id)
    return jsonify({"enabled": bool(task.config.get("user_study")), **s.storage.interactions.summary(task.id),
                    "actions": study.STUDY_ACTIONS})


@bp.get("/admin/tasks/<task_id>/study/export")
def export(task_id: str):
    """The task's action log as CSV or JSON Lines, as a download."""
    s = services()
    require_admin(s.db, s.tasks)
    task = s.tasks.get(task_id)
    fmt = parse(StudyExportQuery, request.args, "query").format
    body = study.export(s.storage, task.id, fmt)
    mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="webfl-study-{task.id}.{fmt}"'})
