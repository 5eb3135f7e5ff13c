"""Tokens: the admin token is generated once, shown once, and stored only as a hash."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import request

from .errors import Forbidden, Unauthorized

ADMIN_HASH_KEY = "admin_token_sha256"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_admin_token(db, preset: str = "") -> str | None:
    """Create the admin token on first start (or take ``preset``); return it then, else None."""
    if db.get_setting(ADMIN_HASH_KEY) is not None:
        return None
    token = preset or new_token()
    db.set_setting(ADMIN_HASH_KEY, hash_token(token))
    return token


def bearer_token() -> str | None:
    """The token from ``Authorization: Bearer <token>`` (tokens are short printable ASCII:
    anything else is no token)."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.startswith("Bearer ") else ""
    return token if 0 < len(token) <= 256 and token.isascii() and token.isprintable() else None


def require_admin(db, tasks) -> None:
    """Refuse the request unless it carries the admin token (compared in constant time).

    No token or one nobody issued: 401; a participant's token: 403.
    """
    token = bearer_token()
    if not token:
        raise Unauthorized("admin token required", "send it as 'Authorization: Bearer <token>'")
    if is_admin(db, token):
        return
    if tasks.client_by_token(token) is not None:
        raise Forbidden("participants cannot use the admin API")
    raise Unauthorized("this token is not valid", "use the admin token printed at first start")


def is_admin(db, token: str) -> bool:
    stored = db.get_setting(ADMIN_HASH_KEY) or ""
    return hmac.compare_digest(hash_token(token), stored)


def require_task_access(db, tasks, task_id: str, allow_admin: bool = True):
    """The participant (or, when allowed, the admin) behind this request, for this task.

    No token: 401. A token nobody issued: 401. Another task's participant, or the admin
    where only participants may act: 403. Returns the Client, or None for the admin.
    """
    token = bearer_token()
    if not token:
        raise Unauthorized("a token is required", "join the task first; send 'Authorization: Bearer <token>'")
    tasks.get(task_id)  # 404 for unknown tasks, after the token check so nothing leaks
    client = tasks.client_by_token(token)
    if client is not None:
        if client.task_id != task_id:
            raise Forbidden("this token belongs to another task")
        if client.blocked:
            raise Forbidden("the organiser removed you from this task", "ask them if you think this is a mistake")
        return client
    if is_admin(db, token):
        if allow_admin:
            return None
        raise Forbidden("only participants can do this")
    raise Unauthorized("this token is not valid", "join the task again to get a new one")
