"""Receiving client updates and folding them into the global model.

The path of one update:

1. validate outside any lock: length, dtype, finite values, norm bound, versions;
2. write its vector durably (content-addressed file, fsync) and insert its row as
   ``pending`` in a committed transaction: from here on it is acknowledged work;
3. under the task's lock, apply pending updates in arrival order (row id) with the
   task's strategy; each new global version is written durably and committed together
   with the rows it consumed.

A crash between 2 and 3 leaves pending rows that :meth:`UpdateService.recover` applies at
the next start, so an acknowledged update is applied exactly once.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from . import direction
from .errors import APIError, Conflict, Forbidden, TooManyRequests
from .locks import TaskLocks
from browser_py.update_encoding import BLOCK, LEVELS, blocks, encoded_size

from .schemas import MAX_ABS_PARAMETER, UpdateHeaders, parse
from .strategies import ClientUpdate, Strategy, make_strategy
from .strategies.fedasync import FedAsync
from .tasks import Client, Task, TaskStore


class UpdateRejected(APIError):
    status = 400


class PayloadTooLarge(APIError):
    status = 413


@dataclass(frozen=True)
class UpdateMeta:
    base_version: int
    num_samples: int
    idempotency_key: str
    metrics: dict
    encoding: str = "f32"  # how the body carries the update (browser_py.update_encoding)


def parse_meta(headers: Mapping[str, str]) -> UpdateMeta:
    """The update's metadata from its headers (declared in :class:`UpdateHeaders`)."""
    wanted = ("X-WebFL-Base-Version", "X-WebFL-Samples", "Idempotency-Key", "X-WebFL-Metrics", "X-WebFL-Encoding")
    h = parse(UpdateHeaders, {k: headers[k] for k in wanted if k in headers}, "header")
    return UpdateMeta(h.base_version, h.num_samples, h.idempotency_key, h.metric_values(), h.encoding)


# the largest block scale a q8-delta may carry: no change can exceed twice the parameter bound
MAX_Q8_SCALE = 2 * MAX_ABS_PARAMETER / LEVELS


def decode_body(stream, content_length: int | None, encoding: str, num_parameters: int,
                update_encoding: str = "f32") -> np.ndarray:
    """Read an update of exactly ``num_parameters`` values, refusing oversized bodies early:
    for ``f32`` the new parameters, for ``q8-delta`` the change it carries (float32)."""
    expected = encoded_size(update_encoding, num_parameters)
    if encoding in ("", "identity"):
        limit = expected
    elif encoding == "gzip":
        limit = expected + expected // 50 + 1024  # incompressible data grows a little
    else:
        raise UpdateRejected(f"unsupported Content-Encoding {encoding[:40]!r}; use gzip or none")
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(f"the update is {content_length} bytes; this task's model takes {expected}")
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"the update is larger than this task's model ({expected} bytes)")
    if encoding == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, expected + 1)
        except zlib.error:
            raise UpdateRejected("the body is not valid gzip") from None
    if len(body) != expected:
        raise UpdateRejected(
            f"the update has {len(body)} bytes; this task's model has {num_parameters} parameters, which take "
            f"{expected} bytes as {update_encoding} (browser_py/update_encoding.py)")
    if update_encoding == "q8-delta":
        return _q8_change(body, num_parameters)
    return check_values(np.frombuffer(body, dtype="<f4"))


def _q8_change(body: bytes, n: int) -> np.ndarray:
    nb = blocks(n)
    scales = np.frombuffer(body[:4 * nb], dtype="<f4")
    if not np.isfinite(scales).all() or (scales < 0).any() or (scales > MAX_Q8_SCALE).any():
        raise UpdateRejected(f"a q8-delta block scale must be finite, at least 0 and at most {MAX_Q8_SCALE:.4g}")
    codes = np.frombuffer(body[4 * nb:], dtype="i1").astype(np.float32)
    return codes * np.repeat(scales, BLOCK)[:n]


def check_values(vector: np.ndarray) -> np.ndarray:
    """Parameters as the models can hold them: finite and within the declared bound."""
    if not np.isfinite(vector).all():
        raise UpdateRejected("the update contains NaN or infinite values")
    largest = float(np.abs(vector).max()) if vector.size else 0.0
    if largest > MAX_ABS_PARAMETER:
        raise UpdateRejected(f"the update contains a value of magnitude {largest:.3g}; "
                             f"no parameter of these models exceeds {MAX_ABS_PARAMETER:g}")
    return vector


RECENT_UPDATES = 20  # how many merged updates define "a typical change"
GUARD_WINDOW = 20    # the direction guard's reference: others' latest among this many updates
ACTIVE_WINDOW = 20   # "participants taking part lately": those behind this many recent updates


def change_bound(config: dict, reference: np.ndarray, recent_norms: list[float] | None = None) -> float | None:
    """How far (L2) one update may move a model whose vector is ``reference``: the task's
    ratio of the model's own size, its absolute bound and (when ``recent_norms`` of merged
    updates are given, at least five) its multiple of their median, whichever is smallest."""
    bounds = []
    k = config.get("max_change_vs_recent")
    if k is not None and recent_norms and len(recent_norms) >= 5:
        bounds.append(k * float(np.median(recent_norms)))
    if config.get("max_change_ratio") is not None:
        bounds.append(config["max_change_ratio"] * max(float(np.linalg.norm(reference.astype(np.float64))), 1e-3))
    if config.get("max_update_norm") is not None:
        bounds.append(float(config["max_update_norm"]))
    return min(bounds) if bounds else None


class UpdateService:
    def __init__(self, tasks: TaskStore, locks: TaskLocks,
                 on_new_version: Callable[[str, int], None] | None = None) -> None:
        self.tasks = tasks
        self.storage = tasks.storage
        self.rows = tasks.storage.updates
        self.params = tasks.storage.params
        self.locks = locks
        self.on_new_version = on_new_version or (lambda task_id, version: None)
        self._current: dict[str, tuple[int, np.ndarray]] = {}  # newest global vector per task

    # --- receiving ------------------------------------------------------------------
    def submit(self, task: Task, client: Client, meta: UpdateMeta, vector: np.ndarray) -> dict:
        """Validate, persist and apply one update; return its acknowledgement."""
        existing = self.rows.find(client.id, meta.idempotency_key)
        if existing is not None:
            return self._ack(existing, duplicate=True)
        self._check_rate(task, client)
        strategy = make_strategy(task.config["aggregator"])
        base = self._check_versions(task, meta.base_version, strategy)
        base_params = self.params.get(base.params_sha256)
        if meta.encoding == "q8-delta":  # the body carried the change: the parameters it leads to
            vector = check_values(np.add(base_params, vector, dtype=np.float32))
        bound = change_bound(task.config, base_params)
        change = np.subtract(vector, base_params, dtype=np.float32)
        norm = float(np.linalg.norm(change.astype(np.float64)))
        if bound is not None and norm > bound:
            raise UpdateRejected(
                f"the update changes the model by {norm:.4g} (L2); this task allows at most {bound:.4g}",
                {"change_norm": norm, "bound": bound})
        change_sketch = direction.sketch(change)  # outside the task lock: it only reads this update
        # The heavy, durable write happens before the task's lock, which merges wait on; under
        # the lock the vector is only confirmed present (or written again if a clean-up took it).
        sha = self.params.put(vector)
        recorded = False
        try:
            with self.locks(task.id):
                self._check_versions(task, meta.base_version, strategy)  # the world may have moved on
                self._check_builds_on_own_last(task, client, meta.base_version)
                if strategy.buffered:
                    self._check_one_per_round(task, client)
                verdict = self._direction_verdict(task, client, change_sketch)
                try:
                    with self.params.lock, self.storage.transaction() as tx:
                        if self.storage.clients.is_blocked(client.id, tx):
                            raise Forbidden("the organiser removed you from this task")
                        update_id = self.rows.insert(
                            tx, task_id=task.id, client_id=client.id, key=meta.idempotency_key,
                            base_version=meta.base_version, num_samples=meta.num_samples,
                            params_sha=self.params.put(vector, sha), metrics=meta.metrics,
                            status="pending" if verdict is None else "discarded", change_norm=norm,
                            sketch=change_sketch.tobytes(), error=verdict)
                    recorded = True
                except self.storage.db.integrity_errors:  # the same key raced in from a retry (any process)
                    return self._ack(self.rows.find(client.id, meta.idempotency_key), duplicate=True)
                self._apply_pending(task, strategy)
        finally:
            if not recorded:  # refused or a duplicate: no row needs the vector written above
                self.params.discard_unused({sha}, self.storage.params_in_use)
        return self._ack(self.rows.get(update_id))

    def _check_rate(self, task: Task, client: Client) -> None:
        """At most the task's ``max_updates_per_minute`` per participant (counted in the
        database, so it holds across restarts)."""
        limit = task.config["max_updates_per_minute"]
        since = time.time() - 60
        recent = self.rows.received_since(client.id, since, limit)
        if len(recent) >= limit:
            updates = "update" if limit == 1 else "updates"
            raise TooManyRequests(f"this task accepts {limit} {updates} per minute from one participant",
                                  recent[-1] - since)

    def _check_builds_on_own_last(self, task: Task, client: Client, base_version: int) -> None:
        """A participant's next update must start from a model that already contains its
        previous one: several updates from one starting point (or from before its own last
        contribution) would multiply one participant's say."""
        last = self.rows.last_applied_version(task.id, client.id)
        if last is not None and base_version < last:
            raise Conflict(f"your previous update went into version {last}; start the next one "
                           f"from that version or a newer one (this one starts from {base_version})",
                           {"current_version": self.tasks.current_version(task.id).version})

    def _direction_verdict(self, task: Task, client: Client, change_sketch: np.ndarray) -> str | None:
        """None to merge; otherwise why the update is kept but not merged (see
        :mod:`server.direction`: its change points against the other participants' median)."""
        if not task.config.get("direction_guard"):
            return None
        ref = direction.reference(self.rows.others_latest_sketches(task.id, client.id, GUARD_WINDOW))
        if ref is None:
            return None
        cos = direction.agreement(change_sketch, ref)
        if cos >= 0:
            return None
        return f"not merged: its change points against what the other participants did recently (cosine {cos:.2f})"

    def _recent_change_norms(self, task: Task) -> list[float]:
        return self.rows.recent_change_norms(task.id, RECENT_UPDATES)

    def _check_one_per_round(self, task: Task, client: Client) -> None:
        """One update per participant per buffer or round: a second is refused, so one
        participant cannot fill a buffer or close a round alone."""
        waiting = self.rows.waiting_of_client(task.id, client.id)
        if waiting is not None:
            raise Conflict("your update for this round is already waiting; send the next one after the "
                           "round closes", {"pending_update_id": waiting})

    def _check_versions(self, task: Task, base_version: int, strategy: Strategy):
        current = self.tasks.current_version(task.id)
        base = self.tasks.version(task.id, base_version)
        if base is None or base_version > current.version:
            raise UpdateRejected(f"version {base_version} does not exist; the newest is {current.version}")
        if base.bundle_sha256 != current.bundle_sha256:
            raise Conflict("the task's model changed since this update started; fetch the new model",
                           {"current_version": current.version})
        staleness = current.version - base_version
        if staleness > task.config["max_staleness"]:
            raise Conflict(f"the update is {staleness} versions old; this task accepts at most "
                           f"{task.config['max_staleness']}", {"current_version": current.version})
        if getattr(strategy, "synchronous", False) and staleness > 0:
            raise Conflict("this round is over; fetch the current model and train again",
                           {"current_version": current.version})
        if not base.params_kept:
            raise Conflict(f"version {base_version} is no longer kept", {"current_version": current.version})
        return base

    # --- applying -------------------------------------------------------------------
    def _global(self, task_id: str, conn=None) -> tuple[int, np.ndarray, str]:
        current = self.tasks.current_version(task_id, conn)
        cached = self._current.get(task_id)
        if cached is None or cached[0] != current.version:
            cached = (current.version, self.params.get(current.params_sha256))
            self._current[task_id] = cached
        return current.version, cached[1], current.bundle_sha256

    def _pending(self, task_id: str) -> list:
        return self.rows.pending(task_id)

    def _client_update(self, task: Task, row, version: int) -> ClientUpdate:
        """The strategy's view of a stored update; the weight its image count earns is
        capped by the task (``max_samples``), whatever the client claimed."""
        base = self.tasks.version(row["task_id"], row["base_version"])
        if base is None or not base.params_kept:
            raise LookupError(f"its base version {row['base_version']} is not kept")
        return ClientUpdate(params=self.params.get(row["params_sha256"]),
                            base=self.params.get(base.params_sha256),
                            num_samples=min(row["num_samples"], task.config["max_samples"]),
                            staleness=version - row["base_version"], received=row["received"],
                            active_participants=self.rows.active_participants(task.id, row["client_id"],
                                                                              ACTIVE_WINDOW))

    def _apply_pending(self, task: Task, strategy: Strategy) -> None:
        """Fold pending updates into the global model (caller holds the task's lock)."""
        rows = self._pending(task.id)
        if not rows:
            return
        if isinstance(strategy, FedAsync):
            for row in rows:  # one version per update, in arrival order
                version, x, bundle_sha = self._global(task.id)
                staleness = version - row["base_version"]
                if staleness > task.config["max_staleness"]:
                    self.rows.discard([row["id"]], f"{staleness} versions old when its turn came")
                    continue
                result = strategy.bounded_aggregate(x, [self._client_update(task, row, version)],
                                                    change_bound(task.config, x, self._recent_change_norms(task)))
                self._commit_version(task, version + 1, result.params, bundle_sha,
                                     [(row["id"], staleness, result.weights[0])])
            return
        version, x, bundle_sha = self._global(task.id)
        updates = [self._client_update(task, row, version) for row in rows]
        if strategy.ready(updates, time.time()):
            result = strategy.bounded_aggregate(x, updates,
                                                change_bound(task.config, x, self._recent_change_norms(task)))
            self._commit_version(task, version + 1, result.params, bundle_sha,
                                 [(row["id"], u.staleness, w) for row, u, w in zip(rows, updates, result.weights)])

    def _commit_version(self, task: Task, version: int, params: np.ndarray, bundle_sha: str,
                        consumed: list[tuple[int, int, float]]) -> None:
        params = np.ascontiguousarray(params, dtype=np.float32)
        with self.params.lock, self.storage.transaction() as tx:
            self.storage.versions.insert(task.id, version, self.params.put(params), bundle_sha, "aggregate", tx)
            self.rows.mark_applied(tx, version, consumed)
        self._current[task.id] = (version, params)
        self._retain(task, version)
        self.on_new_version(task.id, version)

    def _retain(self, task: Task, newest: int) -> None:
        """Delete parameter files no longer needed: old versions and applied updates."""
        candidates = self.storage.versions.drop_params_up_to(task.id, newest - task.config["keep_versions"])
        candidates |= self.rows.applied_into(task.id, newest)
        self.params.discard_unused(candidates, self.storage.params_in_use)

    # --- lifecycle ------------------------------------------------------------------
    def recover(self) -> None:
        """At start: apply what was acknowledged but not yet applied before a stop, then
        delete parameter files a crash left without a row (written, never referenced).

        A pending update that cannot be applied (its file or base version is gone, it no
        longer fits the model) is quarantined with the reason, logged and shown to the
        admin; the server starts anyway."""
        for task in self.tasks.list():
            if not self._pending(task.id):
                continue
            with self.locks(task.id):
                try:
                    strategy = make_strategy(task.config["aggregator"])
                    self._quarantine_unusable(task)
                    self._apply_pending(task, strategy)
                except Exception as exc:  # one broken task must not keep the others down
                    rows = self._pending(task.id)
                    self._quarantine([r["id"] for r in rows], f"{type(exc).__name__}: {exc}")
        self.params.collect(self.storage.referenced_params)

    def _quarantine_unusable(self, task: Task) -> None:
        try:
            version = self.tasks.current_version(task.id).version
        except APIError:
            return
        for row in self._pending(task.id):
            try:
                update = self._client_update(task, row, version)
                if update.params.shape != update.base.shape:
                    raise ValueError("its size does not match the model")
            except Exception as exc:
                self._quarantine([row["id"]], f"{type(exc).__name__}: {exc}")

    def _quarantine(self, ids: list[int], reason: str) -> None:
        if not ids:
            return
        print(f"webfl: recovery quarantined update(s) {ids}: {reason}", flush=True)
        self.rows.quarantine(ids, reason)

    def tick(self) -> None:
        """Close rounds whose deadline passed, and merge acknowledged updates that a process
        which died after acknowledging left waiting (called every second by the one process
        that runs background work)."""
        for task in self.tasks.list():
            strategy = make_strategy(task.config["aggregator"])
            if strategy.buffered or self._pending(task.id):
                with self.locks(task.id):
                    self._apply_pending(task, strategy)

    # --- acknowledgements -------------------------------------------------------------
    def _ack(self, row, duplicate: bool = False) -> dict:
        current = self.tasks.current_version(row["task_id"])
        status = {"pending": "buffered"}.get(row["status"], row["status"])
        return {"update_id": row["id"], "status": status,
                "duplicate": duplicate, "base_version": row["base_version"],
                "applied_version": row["applied_version"], "staleness": row["staleness"],
                "weight": row["weight"], "current_version": current.version}
