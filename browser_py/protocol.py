"""The federated protocol from the participant's side.

join -> manifest and bundle -> pull the global parameters -> (train) -> push the update
with the version it started from. Pushing survives network failures and server restarts:
the update is written to the client's store (the outbox) with its idempotency key while
the first attempt is on its way, retried with exponential backoff (tenacity), and resent
after a page reload by :meth:`FLClient.flush_outbox`. The server applies a key at most once.
A server that answers 429 says how long to wait (``Retry-After``): the client waits that
long, not its own guess, and gives up at once when the wait would outlast its patience.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import uuid
from array import array
from dataclasses import dataclass
from typing import Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_before_delay, wait_exponential_jitter

from .bundle_source import BundleSource
from .transport import NetworkError, Response, Transport, default_transport
from .update_encoding import encode_q8_delta

OUTBOX_KEY = "outbox"
# when (wall-clock seconds) a 429 said the outbox may ask again: kept, so that a reload does
# not ask sooner and get one more refusal
NOT_BEFORE_KEY = OUTBOX_KEY + ":not_before"
CARRIED_KEY = "q8_carried"  # what q8-delta rounding dropped so far (error feedback), float32 bytes


class ServerRefused(RuntimeError):
    """The server answered with a 4xx: the request itself is wrong; retrying won't help."""

    def __init__(self, status: int, error: str, detail: object = None) -> None:
        super().__init__(f"{error} (HTTP {status})")
        self.status, self.error, self.detail = status, error, detail


class ServerUnavailable(RuntimeError):
    """5xx or no answer: worth retrying later."""


# told before a wait between tries: (seconds, what went wrong)
RetryFn = Callable[[float, ServerUnavailable], None]


class ServerBusy(ServerUnavailable):
    """429: the server asks to come back later, ``retry_after`` seconds from now (None when
    it did not say so in a form the client reads); ``reason`` is the server's own words."""

    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(f"{reason} (HTTP 429)")
        self.reason, self.retry_after = reason, retry_after


MAX_ERROR_CHARS = 300  # of a refusal's words kept to show
MAX_TOLD_WAIT = 3600.0  # a longer Retry-After is read as this: the outbox tries again within the hour
MIN_TOLD_WAIT = 1.0  # a shorter one is waited this long: "Retry-After: 0" on every answer is no loop


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds to wait, or None: only ASCII digits count (the HTTP-date
    form and anything else fall back to the client's own backoff), bounded by MAX_TOLD_WAIT."""
    value = (value or "").strip()
    if not value or not value.isascii() or not value.isdigit():
        return None
    return MAX_TOLD_WAIT if len(value) > 6 else min(float(int(value)), MAX_TOLD_WAIT)


class _WaitAsTold:
    """Tenacity's wait: what a 429 asked for (at least MIN_TOLD_WAIT), else exponential
    backoff with jitter."""

    def __init__(self, max_wait: float) -> None:
        self.backoff = wait_exponential_jitter(initial=0.2, max=max_wait)

    def __call__(self, state: RetryCallState) -> float:
        told = getattr(state.outcome.exception(), "retry_after", None)
        return max(told, MIN_TOLD_WAIT) if told is not None else self.backoff(state)


@dataclass
class Membership:
    task_id: str
    client_id: str
    token: str
    name: str


class HttpBundle(BundleSource):
    """A task's bundle as the server serves it, through the client's transport."""

    def __init__(self, client: "FLClient") -> None:
        super().__init__()
        self.client = client

    async def _read(self, name: str) -> bytes:
        path = "manifest" if name == "manifest.json" else f"bundle/{name}"
        return (await self.client.call("GET", f"/api/tasks/{self.client.task_id}/{path}")).body


class FLClient:
    """One participant of one task. ``meta`` is where the membership and the outbox persist:
    any object with async ``get_meta(key)`` / ``set_meta(key, value)`` / ``set_metas(values)``
    (the dataset store)."""

    def __init__(self, base_url: str, meta, transport: Transport | None = None,
                 retry_seconds: float = 300.0, max_wait: float = 20.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.meta = meta
        self.transport = transport or default_transport()
        self.retry_seconds = retry_seconds
        self.max_wait = max_wait
        self.membership: Membership | None = None
        self._outbox_not_before: float | None = None  # monotonic; None: the kept time not read yet

    @property
    def task_id(self) -> str:
        assert self.membership is not None, "join first"
        return self.membership.task_id

    # --- plumbing ---------------------------------------------------------------------
    async def call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                   retry: bool = True, on_retry: RetryFn | None = None, patience: float | None = None) -> Response:
        """A request with the participant token; 5xx, 429 and network errors are retried for
        up to ``patience`` seconds (the client's ``retry_seconds`` unless given); ``on_retry``
        is told before each wait (the page says it)."""
        hdrs = dict(headers or {})
        if self.membership is not None:
            hdrs["Authorization"] = f"Bearer {self.membership.token}"

        async def once() -> Response:
            try:
                r = await self.transport.request(method, self.base_url + path, hdrs, body)
            except NetworkError as exc:
                raise ServerUnavailable(str(exc)) from None
            if r.status >= 500:
                raise ServerUnavailable(f"{method} {path}: HTTP {r.status}")
            if r.status >= 400:
                info = _error_body(r.body)
                if r.status == 429:
                    raise ServerBusy(info["error"], retry_after_seconds(r.headers.get("retry-after")))
                raise ServerRefused(r.status, info["error"], info.get("detail"))
            return r

        if not retry:
            return await once()

        def before_sleep(state: RetryCallState) -> None:
            if on_retry is not None:
                on_retry(state.upcoming_sleep, state.outcome.exception())

        # stop before a wait that would end past the client's patience: a 429 asking for
        # longer gives up at once (the outbox keeps an update; the page says why)
        async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(ServerUnavailable), reraise=True,
                wait=_WaitAsTold(self.max_wait),
                stop=stop_before_delay(self.retry_seconds if patience is None else patience),
                before_sleep=before_sleep):
            with attempt:
                return await once()
        raise AssertionError("unreachable")

    # --- membership -------------------------------------------------------------------
    async def restore(self) -> bool:
        """Pick up a membership saved by an earlier session (page reload)."""
        saved = await self.meta.get_meta("membership")
        if saved:
            self.membership = Membership(**saved)
        return self.membership is not None

    async def preview(self, code: str) -> dict:
        return (await self.call("GET", f"/api/join/{code.strip()}")).json()

    async def join(self, code: str, name: str = "", on_retry: RetryFn | None = None,
                   patience: float | None = None) -> Membership:
        r = await self.call("POST", "/api/join", json.dumps({"code": code, "name": name}).encode(),
                            {"Content-Type": "application/json"}, on_retry=on_retry, patience=patience)
        info = r.json()
        self.membership = Membership(info["task_id"], info["client_id"], info["token"], info["name"])
        await self.meta.set_meta("membership", self.membership.__dict__)
        return self.membership

    async def rename(self, name: str) -> str:
        """Change the name the organiser sees; returns the name the server kept."""
        r = await self.call("PATCH", f"/api/tasks/{self.task_id}/me", json.dumps({"name": name}).encode(),
                            {"Content-Type": "application/json"})
        self.membership.name = r.json()["name"]
        await self.meta.set_meta("membership", self.membership.__dict__)
        return self.membership.name

    # --- model --------------------------------------------------------------------------
    async def task(self) -> dict:
        return (await self.call("GET", f"/api/tasks/{self.task_id}")).json()

    def bundle(self) -> HttpBundle:
        return HttpBundle(self)

    async def pull(self) -> tuple[int, array]:
        """The newest global parameters and their version."""
        r = await self.call("GET", f"/api/tasks/{self.task_id}/model")
        params = array("f")
        params.frombytes(r.body)
        return int(r.headers["x-webfl-version"]), params

    async def current_version(self) -> int:
        return int((await self.task())["version"])

    # --- updates ------------------------------------------------------------------------
    async def push(self, params: array, base_version: int, samples: int, metrics: dict | None = None,
                   encoding: str = "f32", base_params: array | None = None, on_retry: RetryFn | None = None) -> dict:
        """Send an update; it is kept in the outbox until the server acknowledged it.

        ``encoding`` is how it travels (``browser_py.update_encoding``): ``q8-delta`` needs
        ``base_params`` and carries the rounding error of this update into the next.
        """
        kept: dict = {}
        if encoding == "q8-delta":
            carried = await self.meta.get_meta(CARRIED_KEY)
            body, dropped = encode_q8_delta(params, base_params,
                                            array("f", carried) if carried and len(carried) == 4 * len(params)
                                            else None)
            kept[CARRIED_KEY] = dropped.tobytes()
        elif encoding == "f32":
            body = params.tobytes()
        else:
            raise ValueError(f"unknown update encoding {encoding!r}")
        entry = {"key": uuid.uuid4().hex, "base_version": base_version, "samples": samples,
                 "metrics": metrics or {}, "task_id": self.task_id, "encoding": encoding}
        # one write: a crash never leaves an entry without its parameters (or the rounding
        # error carried on without the update that carries the rest). It goes on while the
        # update travels (the key makes a resend harmless); it is done before the outbox is
        # emptied, or before an update that did not get through is said to wait in it.
        keeping = asyncio.ensure_future(self.meta.set_metas({**kept, OUTBOX_KEY: entry, OUTBOX_KEY + ":params": body}))
        return await self._send(entry, body, keeping=keeping, on_retry=on_retry)

    async def flush_outbox(self, retry: bool = True) -> dict | None:
        """Resend an update that was not acknowledged before a reload, a crash or while the
        connection was down; ``retry=False`` tries once (a page checking in the background)."""
        entry = await self.meta.get_meta(OUTBOX_KEY)
        if not entry or self.membership is None or entry.get("task_id") != self.task_id:
            return None
        if self._outbox_not_before is None:
            self._outbox_not_before = time.monotonic() + _seconds_left(await self.meta.get_meta(NOT_BEFORE_KEY))
        left = self._outbox_not_before - time.monotonic()
        if left > 0:  # the server asked to wait: asking sooner would only be refused again
            raise ServerBusy("the server asked to wait before this update is sent again", left)
        body = await self.meta.get_meta(OUTBOX_KEY + ":params")
        return await self._send(entry, body, retry)

    async def has_unsent(self) -> bool:
        """Whether an update waits in the outbox (not yet acknowledged by the server)."""
        entry = await self.meta.get_meta(OUTBOX_KEY)
        return bool(entry) and self.membership is not None and entry.get("task_id") == self.task_id

    async def _send(self, entry: dict, body: bytes, retry: bool = True,
                    keeping: asyncio.Future | None = None, on_retry: RetryFn | None = None) -> dict:
        headers = {"Content-Type": "application/octet-stream", "Idempotency-Key": entry["key"],
                   "X-WebFL-Base-Version": str(entry["base_version"]),
                   "X-WebFL-Samples": str(entry["samples"]),
                   "X-WebFL-Metrics": json.dumps(entry["metrics"]),
                   "X-WebFL-Encoding": entry.get("encoding", "f32")}
        try:
            ack = (await self.call("POST", f"/api/tasks/{self.task_id}/updates", body, headers, retry,
                                   on_retry)).json()
        except ServerRefused:
            await _finished(keeping)
            await self._empty_outbox()  # refused for good: nothing to resend
            raise
        except BaseException as exc:
            told = exc.retry_after if isinstance(exc, ServerBusy) else None
            if isinstance(exc, ServerBusy):
                self._outbox_not_before = time.monotonic() + (told or 0.0)
            if keeping is not None:
                await keeping  # it waits in the outbox (a write that failed says so instead)
            if told:
                with contextlib.suppress(Exception):  # lost, a reload asks once more: harmless
                    await self.meta.set_metas({NOT_BEFORE_KEY: time.time() + told}, durable=False)
            raise
        await _finished(keeping)
        await self._empty_outbox()
        return ack

    async def _empty_outbox(self) -> None:
        await self.meta.set_metas({OUTBOX_KEY: None, OUTBOX_KEY + ":params": None, NOT_BEFORE_KEY: None},
                                  durable=False)


def _seconds_left(until: object) -> float:
    """Seconds from now to a kept wall-clock time, within [0, MAX_TOLD_WAIT] (a clock set
    back does not make the outbox wait longer than the server could ask)."""
    if isinstance(until, bool) or not isinstance(until, (int, float)):
        return 0.0
    try:
        until = float(until)
    except OverflowError:  # an integer past a float's range
        return MAX_TOLD_WAIT if until > 0 else 0.0
    if not math.isfinite(until):
        return 0.0
    return min(max(until - time.time(), 0.0), MAX_TOLD_WAIT)


def _error_body(body: bytes) -> dict:
    """The server's ``{"error": ..., "detail": ...}``; any other body as the error's words
    (cut short: a proxy's error page is not a sentence)."""
    try:
        info = json.loads(body) if body.startswith(b"{") else None
    except (ValueError, RecursionError):
        info = None
    if not isinstance(info, dict) or not isinstance(info.get("error"), str):
        info = {"error": body.decode(errors="replace")}
    return info | {"error": info["error"][:MAX_ERROR_CHARS] or "refused"}


async def _finished(write: asyncio.Future | None) -> None:
    """Wait for an outbox write whose update the server has answered for good: its failure
    no longer matters (the outbox is emptied next)."""
    if write is not None:
        with contextlib.suppress(Exception):
            await write
