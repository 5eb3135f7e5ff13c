"""HTTP for the client: one small interface, a Pyodide twin (fetch) and a CPython twin.

Both return every HTTP status as a :class:`Response` and raise :class:`NetworkError`
only when no answer came at all, so the protocol decides what to retry.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from .runtime import IN_PYODIDE


class NetworkError(ConnectionError):
    """The server could not be reached (offline, refused, timed out)."""


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self):
        import json

        return json.loads(self.body or b"null")


class Transport(Protocol):
    """One HTTP request: :class:`UrllibTransport` in CPython, :class:`FetchTransport` in the
    browser. Network failures raise :class:`NetworkError`; HTTP errors are Responses."""

    async def request(self, method: str, url: str, headers: dict | None = None,
                      body: bytes | None = None) -> Response: ...


class UrllibTransport(Transport):
    """CPython: the standard library's HTTP client, off the event loop in a thread."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout

    def _blocking(self, method: str, url: str, headers: dict, body: bytes | None) -> Response:
        import socket
        import urllib.error
        import urllib.request

        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return Response(r.status, r.read(), {k.lower(): v for k, v in r.headers.items()})
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.read(), {k.lower(): v for k, v in exc.headers.items()})
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as exc:
            raise NetworkError(f"{method} {url}: {getattr(exc, 'reason', exc)}") from None

    async def request(self, method: str, url: str, headers: dict | None = None,
                      body: bytes | None = None) -> Response:
        return await asyncio.to_thread(self._blocking, method, url, headers or {}, body)


class FetchTransport(Transport):
    """The browser: ``fetch`` through Pyodide."""

    async def request(self, method: str, url: str, headers: dict | None = None,
                      body: bytes | None = None) -> Response:
        from pyodide.ffi import JsException
        from pyodide.http import pyfetch

        kwargs: dict = {"method": method, "headers": headers or {}}
        if body is not None:
            from .jsvalues import uint8array

            kwargs["body"] = uint8array(body)
        try:
            r = await pyfetch(url, **kwargs)
            payload = await r.bytes()
        except (JsException, OSError) as exc:
            raise NetworkError(f"{method} {url}: {exc}") from None
        headers_out = {str(k).lower(): str(v) for k, v in r.js_response.headers.entries()}
        return Response(r.status, payload, headers_out)


def default_transport() -> Transport:
    return FetchTransport() if IN_PYODIDE else UrllibTransport()
