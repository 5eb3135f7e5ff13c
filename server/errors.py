"""Errors that carry their HTTP status, and the one JSON envelope they render to."""
from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException


class APIError(Exception):
    """A refused request: ``{"error": message, "detail": detail}`` with ``status``."""

    status = 400

    def __init__(self, message: str, detail: object = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        if status is not None:
            self.status = status


class NotFound(APIError):
    status = 404


class Unauthorized(APIError):
    status = 401


class Forbidden(APIError):
    status = 403


class Conflict(APIError):
    status = 409


class TooManyRequests(APIError):
    """429 with ``Retry-After``: the client's retry policy waits and tries again."""

    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, {"retry_after_seconds": round(retry_after, 1)})
        self.retry_after = retry_after


def envelope(message: str, detail: object = None, status: int = 400):
    response = jsonify({"error": message, "detail": detail})
    response.status_code = status
    return response


def register(app: Flask, data_errors: tuple[type[Exception], ...] = ()) -> None:
    """Every refusal renders as the envelope. ``data_errors``: the database driver's errors for
    a value it cannot hold (PostgreSQL refuses a NUL character in text, for one): the
    request's fault, so a 400 (its transaction rolled back), never a 500."""
    for exc_type in data_errors:
        app.register_error_handler(exc_type, lambda exc: envelope(
            "a value in this request cannot be stored (for example a NUL character in text)",
            str(exc).splitlines()[0][:200]))

    @app.errorhandler(APIError)
    def _api_error(exc: APIError):
        response = envelope(exc.message, exc.detail, exc.status)
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return envelope(exc.name, exc.description, exc.code or 500)
