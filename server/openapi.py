"""The API description served at ``/api/openapi.json`` (a test keeps it true to the routes).

Headers, queries and JSON bodies are described by the same pydantic declarations that
validate them (:mod:`server.schemas`, :mod:`server.taskconfig`), so bounds cannot drift.
"""
from __future__ import annotations

from flask import Blueprint, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .schemas import (ConsentBody, JoinBody, RenameBody, SinceQuery, StudyEventsBody, StudyExportQuery,
                      TaskCreateBody, TaskEditBody, UpdateHeaders, VersionQuery)
from .taskconfig import TaskConfig

_REF = "#/components/schemas/{model}"

bp = Blueprint("openapi", __name__)

_ERROR = {"$ref": "#/components/responses/Error"}


def _op(summary: str, responses: dict, security: str | None = "participant", params: list | None = None,
        body: dict | None = None) -> dict:
    op: dict = {"summary": summary, "responses": {str(k): v for k, v in responses.items()}}
    if security == "participant":
        op["security"] = [{"participantToken": []}, {"adminToken": []}]
    elif security == "participant-only":
        op["security"] = [{"participantToken": []}]
    elif security == "admin":
        op["security"] = [{"adminToken": []}]
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    for code in ("400", "401", "403", "404"):
        if security or code in ("400", "404"):
            op["responses"].setdefault(code, _ERROR)
    return op


def _ok(description: str, media: str = "application/json") -> dict:
    return {"description": description, "content": {media: {}}}


TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
CLIENT_ID = {"name": "client_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _json_body(model: type[BaseModel]) -> dict:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}}


def _parameters(model: type[BaseModel], where: str) -> list[dict]:
    """OpenAPI parameters (``header`` or ``query``) from a model's fields and bounds."""
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        param = {"name": name, "in": where, "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        out.append(param)
    return out


def _schemas() -> dict:
    _, defs = models_json_schema([(m, "validation") for m in (TaskConfig, JoinBody, TaskCreateBody, TaskEditBody,
                                                                   ConsentBody, StudyEventsBody, RenameBody)],
                                 ref_template=_REF)
    return defs["$defs"]


def document() -> dict:
    paths = {
        "/api/health": {"get": _op("Liveness check: the storage backend and whether this process runs the "
                                   "background work", {200: _ok("ok")}, security=None)},
        "/api/openapi.json": {"get": _op("This document", {200: _ok("OpenAPI 3.1")}, security=None)},
        "/api/join/{code}": {"get": _op(
            "Preview the task behind a join code (title, classes); no token needed",
            {200: _ok("public task info")}, security=None,
            params=[{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}])},
        "/api/join/{code}/qr.svg": {"get": _op(
            "The join link as a QR code (SVG); no token needed", {200: _ok("svg", "image/svg+xml")}, security=None,
            params=[{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}])},
        "/api/join": {"post": _op(
            "Join a task with its code; returns a participant token (shown once)",
            {201: _ok("{task_id, client_id, name, token, task}"), 429: _ERROR}, security=None,
            body=_json_body(JoinBody))},
        "/api/tasks/{task_id}": {"get": _op("Task info and current version", {200: _ok("task")},
                                            params=[TASK_ID])},
        "/api/tasks/{task_id}/me": {"patch": _op(
            "Change the display name the organiser sees (empty: a generated one)", {200: _ok("{client_id, name}")},
            security="participant-only", params=[TASK_ID], body=_json_body(RenameBody))},
        "/api/tasks/{task_id}/manifest": {"get": _op(
            "The bundle's manifest.json (ETag)", {200: _ok("manifest"), 304: {"description": "not modified"}},
            params=[TASK_ID])},
        "/api/tasks/{task_id}/bundle/{name}": {"get": _op(
            "One bundle file listed in the manifest (ETag = its sha256)",
            {200: _ok("file", "application/octet-stream"), 304: {"description": "not modified"}},
            params=[TASK_ID, {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}])},
        "/api/tasks/{task_id}/model": {"get": _op(
            "Global parameters as little-endian float32 (header X-WebFL-Version)",
            {200: _ok("parameters", "application/octet-stream"), 304: {"description": "not modified"},
             410: _ERROR},
            params=[TASK_ID, *_parameters(VersionQuery, "query")])},
        "/api/tasks/{task_id}/updates": {"post": _op(
            "Send an update: the new local parameters, float32 little-endian, optionally "
            "Content-Encoding: gzip. Acknowledged only once durably stored; a retry with the same "
            "Idempotency-Key returns the first acknowledgement (200) instead of applying twice.",
            {201: _ok("acknowledgement"), 200: _ok("acknowledgement of an earlier identical request"),
             409: _ERROR, 413: _ERROR, 429: _ERROR},
            security="participant-only",
            params=[TASK_ID, *_parameters(UpdateHeaders, "header")],
            body={"required": True, "content": {"application/octet-stream": {}}})},
        "/api/tasks/{task_id}/metrics": {"get": _op(
            "Versions with their updates (client, staleness, weight, samples, metrics) and evaluations",
            {200: _ok("metrics")},
            params=[TASK_ID, *_parameters(SinceQuery, "query")])},
        "/api/tasks/{task_id}/study/consent": {
            "get": _op("A user study's notice and this participant's answer (agreed: null until answered)",
                       {200: _ok("{agreed, notice}"), 409: _ERROR}, security="participant-only", params=[TASK_ID]),
            "post": _op("Answer the study notice: agree to have actions recorded, or take part without it "
                        "(a later no deletes what was recorded)", {200: _ok("{agreed}"), 409: _ERROR},
                        security="participant-only", params=[TASK_ID], body=_json_body(ConsentBody))},
        "/api/tasks/{task_id}/study/events": {"post": _op(
            "Record up to 500 actions of a participant who agreed; an event id already stored is skipped. "
            "403 (nothing stored) without agreement", {201: _ok("{stored, duplicates}"), 409: _ERROR, 413: _ERROR},
            security="participant-only", params=[TASK_ID], body=_json_body(StudyEventsBody))},
        "/api/admin/tasks/{task_id}/study": {"get": _op(
            "A user study's answers (agreed, declined) and how many actions were recorded",
            {200: _ok("summary")}, security="admin", params=[TASK_ID])},
        "/api/admin/tasks/{task_id}/study/export": {"get": _op(
            "The action log as CSV or JSON Lines (participants by pseudonymous id)",
            {200: _ok("csv or jsonl", "text/csv")}, security="admin",
            params=[TASK_ID, *_parameters(StudyExportQuery, "query")])},
        "/api/admin/choices": {"get": _op(
            "Models, aggregators (with papers, parameters and defaults) and config defaults for the task form",
            {200: _ok("choices")}, security="admin")},
        "/api/admin/tasks": {
            "get": _op("All tasks with config, join code and status", {200: _ok("tasks")}, security="admin"),
            "post": _op("Create a task {title, config}; its bundle builds in the background. "
                        "config follows the TaskConfig schema (defaults fill what is left out)",
                        {201: _ok("task")}, security="admin", body=_json_body(TaskCreateBody))},
        "/api/admin/tasks/{task_id}": {
            "get": _op("One task", {200: _ok("task")}, security="admin", params=[TASK_ID]),
            "patch": _op("Edit title and config; model, classes, lr or train_blocks rebuild the bundle",
                         {200: _ok("task"), 409: _ERROR}, security="admin", params=[TASK_ID],
                         body=_json_body(TaskEditBody))},
        "/api/admin/tasks/{task_id}/join-code": {"post": _op(
            "Rotate the join code: the old link and QR code stop working; members keep their tokens",
            {200: _ok("task")}, security="admin", params=[TASK_ID])},
        "/api/admin/tasks/{task_id}/clients/{client_id}/block": {"post": _op(
            "Block a participant: its token stops working at once and its waiting updates are dropped",
            {200: _ok("{client_id, blocked, pending_updates_dropped}")}, security="admin",
            params=[TASK_ID, CLIENT_ID])},
        "/api/admin/tasks/{task_id}/clients": {"get": _op(
            "Participants with their contributions (updates by outcome, images claimed, last update, blocked) "
            "and quarantined updates", {200: _ok("clients")}, security="admin", params=[TASK_ID])},
        "/api/admin/tasks/{task_id}/download": {"get": _op(
            "The global model (newest or ?version=N) as ONNX or a PyTorch state_dict (?format=onnx|pytorch)",
            {200: _ok("file", "application/octet-stream")}, security="admin",
            params=[TASK_ID, {"name": "format", "in": "query", "schema": {"enum": ["onnx", "pytorch"]}},
                    *_parameters(VersionQuery, "query")])},
        "/api/admin/tasks/{task_id}/validation": {"put": _op(
            "Upload a validation set (zip with a folder per class, or .npz with images and labels); "
            "every new version is then evaluated", {200: _ok("summary"), 413: _ERROR}, security="admin",
            params=[TASK_ID], body={"required": True, "content": {"application/zip": {}}})},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "webfl", "version": "1",
                 "description": "Federated learning server: participants join tasks, fetch the global model, "
                                "train in their browser and send parameter updates."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "participantToken": {"type": "http", "scheme": "bearer", "description": "from POST /api/join"},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "printed by `webfl run` at first start"},
            },
            "schemas": _schemas(),
            "responses": {"Error": {"description": "refused; nothing changed", "content": {"application/json": {
                "schema": {"type": "object", "required": ["error", "detail"],
                           "properties": {"error": {"type": "string"}, "detail": {}}}}}}},
        },
    }


@bp.get("/api/openapi.json")
def openapi_json():
    return jsonify(document())
