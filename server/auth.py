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


def ensure_admin_token(db) -> str | None:
    """Create the admin token on first start; return it then (and None ever after)."""
    if db.get_setting(ADMIN_HASH_KEY) is not None:
        return None
    token = new_token()
    db.set_setting(ADMIN_HASH_KEY, hash_token(token))
    return token


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


def require_admin(db) -> None:
    """Refuse the request unless it carries the admin token (compared in constant time)."""
    token = bearer_token()
    if not token:
        raise Unauthorized("admin token required", "send it as 'Authorization: Bearer <token>'")
    stored = db.get_setting(ADMIN_HASH_KEY) or ""
    if not hmac.compare_digest(hash_token(token), stored):
        raise Forbidden("this token is not the admin token")
