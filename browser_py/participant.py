"""One participant, independent of any UI: the controller the page and headless clients share.

It joins (or resumes), loads the task's bundle into a trainer, keeps the dataset, asks the
global model for label suggestions, trains a local round and sends the update.
"""
from __future__ import annotations

import asyncio
import math
import time
from array import array
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from . import extension_loader, labeling
from .explain import class_activation_map, head_weights
from .dataset import Dataset, ImportProgress, Item
from .extensions import Context, Update
from .features import FeatureExtractor, load_features
from .preprocess import InputSpec, check_image, decode
from .protocol import FLClient, RetryFn, ServerBusy, ServerRefused, ServerUnavailable
from .runtime import IN_PYODIDE, long_work, mark
from .stores import Store
from .study import StudyLog
from .trainer import CancelToken, Cancelled, LocalTrainer, ProgressFn
from .zip_reader import RangeSource


# the longest a single feature-extraction call may hold the browser's main thread (about).
# Larger batches are faster per image (batch 8: 1.3-2.4x batch 1 here), but at 0.1 s the calls, with
# the work around them, made 104-110 ms tasks (the target is 100); 0.05 made 58-75 ms.
EXTRACT_SLICE_SECONDS = 0.05
# Images per batch when features are prepared in the background, while the participant looks
# at their photos: around a batch of 16 the page's main thread was held once for 110-120 ms in
# one Python task (a long-animation-frame entry); batches of 4 kept every task under 60 ms.
BACKGROUND_BATCH = 4
# Between epochs the server is asked for its version at most this often: a 60-photo round of 5
# epochs took ~0.1 s, and asking after every epoch added 6-13 ms an ask (18-39 ms after a reload).
VERSION_ASK_SECONDS = 1.0
# Photos decoded for the model at once. A decode ends on the page's main thread (drawing the
# picture, reading its pixels: 2-15 ms), and Pyodide runs every Python step that is ready in
# one browser task: a batch of 16 decodes ending together made single tasks of 89-98 ms.
MODEL_DECODE_AT_ONCE = 4
# While an update waits to be sent (a wait the server asked for, an outage), the round looks
# this often whether the participant stopped it: the page's target is a stop within 0.5 s.
STOP_LOOK_SECONDS = 0.2
# told (images prepared so far, images to prepare) while features are computed
PreparingFn = Callable[[int, int], Awaitable[None]]


def _version_or_none(answer: asyncio.Future) -> int | None:
    """The version a finished request brought; None when it failed (offline: train on, the
    update waits in the outbox if sending fails too)."""
    if answer.cancelled() or answer.exception() is not None:
        return None
    return answer.result()


async def _done_unless_cancelled(work: asyncio.Future, cancel: CancelToken | None) -> bool:
    """Wait for ``work``, looking at ``cancel`` every STOP_LOOK_SECONDS: True once it is done,
    False when cancelled first (the work is left as it is: the caller says what becomes of it)."""
    while not work.done():
        await asyncio.wait([work], timeout=STOP_LOOK_SECONDS)
        if cancel is not None and cancel.cancelled and not work.done():
            return False
    return True


def _ended_out_of_sight(work: asyncio.Future) -> None:
    """For work left to end after its caller was cancelled: its outcome is read (no "never
    retrieved" in the console) and dropped; a failure shows again when the work is asked for."""
    if not work.cancelled():
        work.exception()


class NotEnoughData(RuntimeError):
    """Training needs more labelled images; the message says how many."""


@dataclass
class RoundResult:
    base_version: int
    epoch_losses: list[float]
    samples: int
    ack: dict
    picked_up: list[int] = field(default_factory=list)  # newer global versions followed mid-round


def carry_progress(local: array, base: array, newer: array) -> array:
    """``newer + (local - base)``: the training progress made from ``base`` so far, carried
    onto a newer global model. With no progress it is exactly ``newer``; nothing of the
    older model comes back (mixing the two would pull the global model back towards the
    old version while the update claims to start from the new one)."""
    return array("f", [n + (a - b) for a, b, n in zip(local, base, newer)])


class Participant:
    def __init__(self, client: FLClient, store: Store, prefer_webgpu: bool = True) -> None:
        self.client = client
        self.store = store
        self.prefer_webgpu = prefer_webgpu
        self.task: dict = {}
        self.manifest: dict = {}
        self.dataset: Dataset | None = None
        self.features: FeatureExtractor | None = None
        self.trainer: LocalTrainer | None = None
        self.spec: InputSpec | None = None
        self.version: int | None = None  # the global version the local model holds
        self.local_params: array | None = None  # the model after the last local round
        # the newest global model pulled, which the next round may start from, and its pull
        # in flight after a round (the server merged that round's update)
        self._held: tuple[int, array] | None = None
        self._holding: asyncio.Future | None = None
        self._pixels: dict[str, array] = {}
        self._decoding = asyncio.Semaphore(MODEL_DECODE_AT_ONCE)
        self._computing = asyncio.Lock()  # one feature computation at a time (they share the extractor)
        self._asking = 0  # callers waiting for inputs: background preparation gives way to them
        self._background: asyncio.Future | None = None
        self.hooks: extension_loader.Hooks | None = None
        self.extension_errors: list[str] = []
        self.last_probs: dict[str, list[float]] = {}  # item id -> the model's probabilities
        self.rounds_sent = 0
        self.start_notice = ""  # something the participant should hear about when the page opens
        self.study = StudyLog(client, store, lambda: self.version)  # records only if the participant agreed

    async def start(self, code: str | None = None, name: str = "", retry_unsent: bool = True) -> "Participant":
        """Join with ``code``, or resume the membership saved in the store. An update left
        unsent is sent first, tried for the client's patience; ``retry_unsent=False`` tries
        once (the page: it sends a waiting update in the background and must not wait)."""
        if code:
            await self.client.join(code, name)
        elif not await self.client.restore():
            raise RuntimeError("not a member of any task yet: join with a code")
        bundle = self.client.bundle()
        self.task, self.manifest = await asyncio.gather(self.client.task(), bundle.load_manifest())
        mark("task")
        if self.manifest["features"]:  # on its way while the training engine starts
            bundle.prefetch([self.manifest["features"]["file"]])
        self.spec = InputSpec.from_manifest(self.manifest)
        if IN_PYODIDE:
            from .ort_web import OrtWebTrainer as Backend
        else:
            from .native.trainer import NativeTrainer as Backend
        backend = await Backend.create(bundle)
        self.trainer = LocalTrainer(backend, self.task["training"]["batch_size"])
        mark("trainer")
        self.features = await load_features(self.manifest, bundle, self.prefer_webgpu)
        mark("features")
        self.dataset = await Dataset(self.store, self.manifest["classes"], self._validate).load()
        mark("photos")
        await self.study.load(self.task)
        self.dataset.observer = self.study.record
        if not code:
            await self.study.record("reload", images=len(self.dataset.items))
        running, self.extension_errors = await extension_loader.load(self.task.get("extensions", []), self.client)
        self.hooks = extension_loader.Hooks(running, Context(self.classes, self.dataset, self), self.extension_errors)
        try:
            await self.client.flush_outbox(retry=retry_unsent)
        except ServerUnavailable:
            pass  # offline: it waits on this device and is sent when the connection returns
        except ServerRefused as exc:  # an update left from before a reload was refused (and dropped):
            self.start_notice = f"Your last update was not taken: {exc.error}."  # say so, keep working
        try:
            await self.study.flush()
        except ServerUnavailable:
            pass
        return self

    @property
    def extensions(self) -> list:
        return self.hooks.extensions if self.hooks else []

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    # --- data ---------------------------------------------------------------------------
    async def _validate(self, data: bytes) -> bytes | None:
        return await check_image(data)

    async def pixels(self, item: Item) -> array:
        if item.id not in self._pixels:
            async with self._decoding:
                if item.id not in self._pixels:  # decoded meanwhile, for someone else
                    self._pixels[item.id] = await decode(item.data, self.spec)
        return self._pixels[item.id]

    async def inputs(self, items: list[Item], progress: PreparingFn | None = None,
                     batch_size: int = 16, cancel: CancelToken | None = None) -> list[array]:
        """The head's inputs for these images: features computed once per image and kept
        with it (a reload finds them; another extractor's are computed again). Only images
        without features are decoded. ``progress(done, total)`` follows the computing.
        Work in the background (:meth:`prepare_in_background`) stops at its next batch.

        A ``cancel`` is answered within STOP_LOOK_SECONDS (:class:`Cancelled`), not when the
        batch on its way ends (16 photos took 0.3-0.6 s here): that batch still ends, out of
        sight, and its features are kept; nothing more is computed for this call."""
        if cancel is None or all(self.features.known(item.id) for item in items):
            return await self._inputs(items, progress, batch_size)  # (a later round: nothing to wait for)

        async def told(done: int, total: int) -> None:
            if progress is not None and not cancel.cancelled:  # the page has said "cancelled" by then
                await progress(done, total)

        computing = asyncio.ensure_future(self._inputs(items, told, batch_size, stop=lambda: cancel.cancelled))
        if not await _done_unless_cancelled(computing, cancel):
            computing.add_done_callback(_ended_out_of_sight)
            raise Cancelled()
        return computing.result()

    async def _inputs(self, items: list[Item], progress: PreparingFn | None, batch_size: int,
                      stop: Callable[[], bool] | None = None) -> list[array]:
        self._asking += 1
        try:
            async with self._computing:
                if not await self._compute(items, progress, batch_size, stop):
                    raise Cancelled()
        finally:
            self._asking -= 1
        return self.features.cached([item.id for item in items])

    def prepare_in_background(self, progress: PreparingFn | None = None) -> None:
        """Compute the features of images that lack them while nothing else asks: the page
        calls this after photos are added, so suggestions and the first round find them
        ready. Anything that needs inputs goes first. ``progress(done, total)`` follows each
        stretch of work and ends with ``done == total`` (also when it gives way)."""
        if self.features is None or self.features.sha256 is None:
            return  # pixels pass straight through: nothing to prepare
        if self._background is None or self._background.done():
            self._background = asyncio.ensure_future(self._prepare_rest(progress))

    @long_work  # the start-up snapshot's worker waits: both want the same cores
    async def _prepare_rest(self, progress: PreparingFn | None) -> None:
        try:
            while True:
                await asyncio.sleep(0)  # whoever waits for the lock gets it first (it is fair)
                todo = [item for item in self.dataset.items.values() if not self.features.known(item.id)]
                if not todo:
                    return
                # stopped for someone who asks, or done: either way look again for photos added meanwhile
                async with self._computing:
                    await self._compute(todo, progress, BACKGROUND_BATCH, stop=lambda: self._asking > 0)
                if progress is not None:
                    await progress(len(todo), len(todo))  # nothing in the background until it goes on
        except Exception:  # e.g. a photo that cannot be read: said when someone asks for it
            if progress is not None:
                await progress(0, 0)

    async def _compute(self, items: list[Item], progress: PreparingFn | None, batch_size: int,
                       stop: Callable[[], bool] | None = None) -> bool:
        """Compute and keep the features these images lack; False when ``stop()`` said to
        stop first (checked between batches)."""
        sha = self.features.sha256
        for item in items:
            kept = None if self.features.known(item.id) else self.dataset.kept_features(item.id, sha)
            if kept is not None:
                self.features.remember(item.id, array("f", kept))
        todo = [item for item in items if not self.features.known(item.id)]
        done, batch, unsaved, ahead, saving = 0, 1, {}, None, None
        stopped = False
        try:
            while done < len(todo):
                if stop is not None and stop():
                    stopped = True
                    break
                chunk = todo[done:done + batch]
                if ahead is not None:
                    await ahead
                pixels = await asyncio.gather(*(self.pixels(item) for item in chunk))  # decoded in parallel
                # the next images decode (off the main thread) while this batch's inference runs
                ahead = asyncio.ensure_future(asyncio.gather(*(self.pixels(item) for item in
                                                               todo[done + batch:done + 2 * batch])))
                started = time.perf_counter()
                out = await self.features.extract([(item.id, px) for item, px in zip(chunk, pixels)], len(chunk))
                per_image = (time.perf_counter() - started) / len(chunk)
                # an inference call on the page's main thread holds the page while it runs: size the
                # next to EXTRACT_SLICE_SECONDS; one in a worker takes whole batches (faster per image)
                batch = batch_size if self.features.off_main_thread else \
                    max(1, min(batch_size, int(EXTRACT_SLICE_SECONDS / max(per_image, 1e-6))))
                done += len(chunk)
                for item, features in zip(chunk, out):
                    self._pixels.pop(item.id, None)  # the features stand for the pixels from now on
                    unsaved[item.id] = features.tobytes()
                if sha is not None and (len(unsaved) >= batch_size or done == len(todo)):
                    # written while the next batch is computed (one write at a time); all are
                    # kept before we return
                    if saving is not None:
                        await saving
                    saving = asyncio.ensure_future(self.dataset.keep_features(unsaved, sha))
                    unsaved = {}
                if progress is not None:
                    await progress(done, len(todo))
        finally:
            if stopped and ahead is not None:
                await asyncio.gather(ahead, return_exceptions=True)  # its pixels stay for whoever is next
            if saving is not None:
                await saving
            if sha is not None and unsaved:
                await self.dataset.keep_features(unsaved, sha)
        return not stopped

    # --- model ----------------------------------------------------------------------------
    async def load_global(self, pulled: Awaitable[tuple[int, array]] | None = None) -> int:
        """Load the newest global model (or the one ``pulled`` since the page began to start)."""
        self.version, params = self._held = await (pulled if pulled is not None else self.client.pull())
        await self.trainer.backend.set_parameters(params)
        return self.version

    async def _start_from_held(self) -> tuple[int, array] | None:
        """Load the global model pulled last (the page's start, a suggestion, the pull after
        the last round) and return (version, parameters); None when none is held."""
        if self._holding is not None:
            if not self._holding.done():  # a finished one may come from a loop now closed (tests)
                await asyncio.wait([self._holding])
            self._holding = None
        if self._held is None:
            return None
        self.version, params = self._held
        await self.trainer.backend.set_parameters(params)
        return self._held

    async def _hold_newest(self) -> None:
        try:
            self._held = await self.client.pull()
        except Exception:  # offline or refused: the next round pulls (and says why)
            self._held = None

    async def suggest(self, items: list[Item] | None = None, order_by: str | None = None,
                      preparing: PreparingFn | None = None, cancel: CancelToken | None = None) -> list[str]:
        """Suggest labels for unlabelled images with the newest global model; return their ids
        (ordered for review when ``order_by`` names an ordering in labeling.ORDERINGS).
        ``preparing(done, total)`` follows the images whose features are computed first;
        ``cancel`` stops that (:class:`Cancelled`, none suggested; what was computed is kept)."""
        await self.load_global()
        items = items if items is not None else self.dataset.unlabelled()
        if not items:
            return []
        probs = await self.trainer.predict_proba(await self.inputs(items, preparing, cancel=cancel))
        made = {}
        for item, p in zip(items, probs):
            label, confidence = labeling.suggestion(p, self.classes)
            for _, custom in self.hooks.call("suggest", item.id, p):
                if custom is not None:
                    label, confidence = custom
            self.last_probs[item.id] = p
            made[item.id] = (label, confidence)
        await self.dataset.suggest(made)
        for item_id, (label, confidence) in made.items():
            await self.study.record("suggestion", item=item_id, label=label, confidence=round(float(confidence), 4))
        ids = [i.id for i in items]
        return labeling.review_order(ids, probs, order_by) if order_by else (self.review_ids() or ids)

    @property
    def can_explain(self) -> bool:
        """Whether "why this label?" works for this task (a pretrained backbone with a map)."""
        return bool(self.manifest.get("explain")) and self.features.map_shape is not None

    async def explain(self, item: Item) -> dict | None:
        """Which regions of the photo drove the model towards its suggestion (or the label):
        ``{label, grid: [H*W values in 0..1], height, width}``, or None if it cannot say."""
        label = item.suggestion if item.label is None else item.label
        if not self.can_explain or label is None:
            return None
        feature_map = await self.features.feature_map(await self.pixels(item))
        weights, _ = head_weights(self.manifest, await self.trainer.backend.get_parameters())
        shape = self.features.map_shape
        grid = class_activation_map(feature_map, shape, weights, self.classes.index(label))
        await self.study.record("explain", item=item.id, label=label)
        return {"label": label, "grid": grid, "height": shape[1], "width": shape[2]}

    def review_ids(self) -> list[str] | None:
        """The unlabelled images in the order an extension wants them reviewed (else None)."""
        ids = [i.id for i in self.dataset.unlabelled() if i.id in self.last_probs]
        order = None
        for _, result in self.hooks.call("review_order", ids, [self.last_probs[i] for i in ids]):
            if result is not None:
                order = list(result)
        return order

    def can_train(self) -> tuple[bool, str]:
        need = int(self.task["training"]["min_labelled"])
        have = len(self.dataset.labelled("train"))
        if have < need:
            return False, f"Label at least {need} training images first (you have {have})."
        return True, f"Ready to train on {have} labelled images."

    async def train_round(self, epochs: int | None = None, progress: ProgressFn | None = None,
                          cancel: CancelToken | None = None, follow_newer: bool = True,
                          seed: int | None = None, preparing: PreparingFn | None = None,
                          sending_waits: RetryFn | None = None) -> RoundResult:
        """Train locally from the newest global model, send the update.

        With ``follow_newer`` (the page), the round starts from the global model pulled last
        (at the page's start, or just after the last round) and asks meanwhile whether the
        server has a newer one (the answer is read after the first epoch that ends once it
        has come, and at the latest when training ends); without it
        (experiments), it pulls first. With it, the server is also asked for its version
        between later epochs, at most every VERSION_ASK_SECONDS. When a newer global model
        exists, the progress made so far is carried onto it (:func:`carry_progress`) and it
        becomes the update's base version, so the update is never stale by more than an
        epoch or VERSION_ASK_SECONDS, whichever is longer. ``sending_waits`` is told when
        sending the update waits to try again (how long, and why); ``cancel`` also stops that
        wait (STOP_LOOK_SECONDS).
        """
        ok, why = self.can_train()
        if not ok:
            raise NotEnoughData(why)
        items = self.dataset.labelled("train")
        began = time.monotonic()
        try:
            xs = await self.inputs(items, preparing, cancel=cancel)
        except Cancelled:  # while its photos were prepared: before training began
            await self.study.record("cancel", seconds=round(time.monotonic() - began, 2))
            raise
        ys = [self.classes.index(i.label) for i in items]
        # augment hooks chain, each on copies: the cached inputs are never changed
        augmented, _ = self.hooks.pipe("augment", ([array("f", x) for x in xs], list(ys)), spread=True)
        if augmented is not None:
            xs, ys = augmented
        asked: asyncio.Future | None = None  # the server's version, on its way
        held = await self._start_from_held() if follow_newer else None
        if held is not None:
            # training starts at once from the model pulled before; whether the server has a
            # newer one is asked meanwhile and followed like one that arrives between epochs
            base, base_params = held
            asked = asyncio.ensure_future(self.client.current_version())
        else:
            base = await self.load_global()
            base_params = self._held[1]
        asked_at = time.monotonic()
        picked: list[int] = []
        epochs = epochs or int(self.task["training"]["local_epochs"])
        started = time.monotonic()
        await self.study.record("train", labelled=len(items), epochs=epochs)

        async def follow(latest: int) -> None:
            nonlocal base, base_params
            if latest > base:
                version, newer = self._held = await self.client.pull()
                local = await self.trainer.backend.get_parameters()
                await self.trainer.backend.set_parameters(carry_progress(local, base_params, newer))
                base, base_params = version, newer
                picked.append(version)

        async def between(epoch: int) -> None:
            nonlocal asked, asked_at
            if not follow_newer:
                return
            if asked is not None:  # asked as the round started
                if not asked.done():
                    # train on and look again after the next epoch (training's end waits for
                    # it): after a reload, waiting here held a round 45-63 ms, against 12-16 ms
                    # in the same page
                    return
                latest, asked = _version_or_none(asked), None
            elif time.monotonic() - asked_at < VERSION_ASK_SECONDS:
                return  # asked (or pulled) moments ago (the page had its turn after the epoch's last slice)
            else:
                # waited for, as a pause the browser gets: epochs that did not wait ran back
                # to back and a long round held the page (a WebDriver command waited 31 s)
                latest = await self.client.current_version()
            asked_at = time.monotonic()
            await follow(latest or base)

        try:
            result = await self.trainer.fit(xs, ys, epochs, seed=seed, progress=progress, cancel=cancel,
                                            between_epochs=between)
            if asked is not None:  # a one-epoch round, or the answer came after the last epoch
                await asyncio.wait([asked])
                await follow(_version_or_none(asked) or base)
        except Cancelled:
            await self.study.record("cancel", seconds=round(time.monotonic() - started, 2))
            raise
        finally:
            if asked is not None and not asked.done():
                asked.cancel()
        params = await self.trainer.backend.get_parameters()
        self.local_params = params
        metrics = {"loss": result.epoch_losses[-1], "epochs": float(len(result.epoch_losses))}
        test = self.dataset.labelled("test")
        if test:
            local_eval = await self.evaluate(test)
            metrics["local_test_accuracy"] = local_eval["accuracy"]
        # The claim is the participant's labelled images, not the augmented copies: the
        # server weighs updates by it.
        update = Update(params, base_params, len(items), base, metrics, self.rounds_sent)
        sent, vetoed_by = self.hooks.pipe("before_send", update)
        if vetoed_by is not None:
            await self.study.record("round", status="vetoed", seconds=round(time.monotonic() - started, 2))
            return RoundResult(base, result.epoch_losses, len(items), {"status": "vetoed", "by": vetoed_by.name},
                               picked)
        update = sent
        for _, extra in self.hooks.call("metrics", update):
            # the server refuses non-finite numbers: keep the update, drop the bad metric
            update.metrics.update({str(k): float(v) for k, v in (extra or {}).items() if math.isfinite(float(v))})
        try:
            ack = await self._push_unless_stopped(update, base, base_params, cancel, sending_waits)
        except ServerBusy as exc:
            # the server asked to wait longer than the client waits: the outbox sends it later
            ack = {"status": "waiting", "busy": exc.reason, "retry_after": exc.retry_after}
        except ServerUnavailable:
            # no connection: the update waits in the outbox (flush_outbox sends it later)
            ack = {"status": "waiting"}
        self.rounds_sent += 1
        self.version = ack.get("applied_version") or base
        self._held = None
        if follow_newer:  # the global model with this update merged, for the next round to start from
            self._holding = asyncio.ensure_future(self._hold_newest())
        await self.study.record("round", status=ack.get("status"), applied_version=ack.get("applied_version"),
                                seconds=round(time.monotonic() - started, 2), samples=len(items))
        try:
            await self.study.flush()
        except ServerUnavailable:
            pass  # kept on this device until the connection returns
        return RoundResult(base, result.epoch_losses, len(items), ack, picked)

    async def _push_unless_stopped(self, update: Update, base: int, base_params: array,
                                   cancel: CancelToken | None, waits: RetryFn | None) -> dict:
        """Send the round's update. Stopped while it waits to be sent, the round ends at once:
        the update stays in the outbox (sent later) if it got there; the ack says which."""
        sending = asyncio.ensure_future(self.client.push(
            update.params, base, update.samples, update.metrics,
            self.task["training"].get("update_encoding", "f32"), base_params, waits))
        if not await _done_unless_cancelled(sending, cancel):
            sending.cancel()  # the outbox's write, once begun, ends first (FLClient._send)
            try:
                await sending
            except (asyncio.CancelledError, ServerUnavailable):
                pass
            else:  # the answer came as it was stopped
                return sending.result()
            return {"status": "stopped", "kept": await self.client.has_unsent()}
        return sending.result()

    async def evaluate(self, items: list[Item] | None = None) -> dict:
        """The model currently loaded, on the participant's test images (by default)."""
        items = items if items is not None else self.dataset.labelled("test")
        if not items:
            return {"accuracy": None, "samples": 0}
        xs = await self.inputs(items)
        return await self.trainer.evaluate(xs, [self.classes.index(i.label) for i in items], len(self.classes))

    async def test(self) -> dict:
        """The last local model (if any) and the newest global model on the test images:
        ``{"local": result | None, "global": result, "version": N}`` (None without test images)."""
        items = self.dataset.labelled("test")
        if not items:
            return {}
        local = None
        if self.local_params is not None:
            await self.trainer.backend.set_parameters(self.local_params)
            local = await self.evaluate(items)
        version = await self.load_global()
        result = {"local": local, "global": await self.evaluate(items), "version": version}
        await self.study.record("test", accuracy=round(result["global"]["accuracy"], 4), images=len(items),
                                local_accuracy=local and round(local["accuracy"], 4))
        return result

    async def import_files(self, files: list[tuple[str, bytes | RangeSource]], label: str | None = None,
                           progress: ImportProgress | None = None, stop: Callable[[], bool] | None = None):
        report = await self.dataset.import_files(files, label, progress, stop)
        labelled = sum(1 for i in report.added if self.dataset.items[i].label is not None)
        await self.study.record("add", count=len(report.added), labelled=labelled, rejected=len(report.rejected),
                                duplicates=len(report.duplicates))
        return report
