"""The interface every training backend implements, and what they share.

Inputs travel as flat ``array('f')`` in the head's input layout (batch first), labels
as lists of ints, parameters as one flat ``array('f')`` in the manifest's order.
All methods are ``async`` because the browser backend awaits onnxruntime-web.
"""
from __future__ import annotations

import asyncio
import math
import random
import time
from array import array
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol, Sequence

from .scoring import Scores


Samples = Any  # what a backend's ``samples`` made; only that backend reads it


class TrainingBackend(Protocol):
    name: str
    num_parameters: int
    input_shape: list[int]  # one sample, at the head's input

    async def train_step(self, inputs: array, labels: Sequence[int]) -> float:
        """One forward/backward pass and one optimizer step; returns the batch loss."""

    def samples(self, xs: Sequence[array], ys: Sequence[int]) -> Samples:
        """The training set in the backend's own memory, made once per fit: steps then name
        samples by index (copying each batch from Python was most of a small step's cost)."""

    async def train_steps(self, samples: Samples, batches: Sequence[Sequence[int]]) -> list[float]:
        """One step per batch of sample indices, in order, waited for once (each wait is a
        trip through the browser's event loop); their batch losses."""

    async def eval_step(self, inputs: array, labels: Sequence[int]) -> tuple[float, array]:
        """Loss and logits (flat, batch x classes) without changing anything."""

    async def get_parameters(self) -> array: ...

    async def set_parameters(self, params: array) -> None: ...


class TrainerError(RuntimeError):
    """Training could not run (bad shapes, a runtime failure), with a readable message."""


def check_batch(backend: TrainingBackend, inputs: array, labels: Sequence[int]) -> int:
    """Validate a batch against the head's input shape; return its size."""
    per_sample = math.prod(backend.input_shape)
    n = len(labels)
    if n == 0 or len(inputs) != n * per_sample:
        raise TrainerError(
            f"a batch of {n} labels needs {n * per_sample} input values, got {len(inputs)}")
    return n


def check_samples(backend: TrainingBackend, xs: Sequence[array], ys: Sequence[int]) -> int:
    """Validate a training set against the head's input shape; return one sample's size."""
    per_sample = math.prod(backend.input_shape)
    if len(xs) != len(ys) or not xs:
        raise TrainerError(f"{len(xs)} samples and {len(ys)} labels: need as many, and some")
    wrong = next((i for i, x in enumerate(xs) if len(x) != per_sample), None)
    if wrong is not None:
        raise TrainerError(f"sample {wrong} has {len(xs[wrong])} input values, the head takes {per_sample}")
    return per_sample


class Cancelled(Exception):
    """Training was cancelled by the participant."""


class CancelToken:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class Progress:
    epoch: int          # 0-based
    epochs: int
    batch: int          # 1-based, within the epoch
    batches: int
    loss: float

    @property
    def fraction(self) -> float:
        return (self.epoch * self.batches + self.batch) / max(1, self.epochs * self.batches)


@dataclass
class FitResult:
    epoch_losses: list[float]
    steps: int
    samples: int


ProgressFn = Callable[[Progress], Awaitable[None] | None]
EpochFn = Callable[[int], Awaitable[None]]


def concat(parts: Sequence[array]) -> array:
    """Per-sample arrays back to back: a batch (or a training set) in the head's layout."""
    out = array("f")
    for p in parts:
        out.extend(p)
    return out


def softmax(logits: Sequence[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(v - top) for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


# Steps are handed to the backend in slices of about this much work: long enough that
# waiting once per slice costs little, short enough that the page still responds (a
# slice is one uninterrupted task on the browser's main thread; cancel is seen between).
SLICE_SECONDS = 0.04


class LocalTrainer:
    """Local training over per-sample feature arrays, on any :class:`TrainingBackend`."""

    def __init__(self, backend: TrainingBackend, batch_size: int = 32) -> None:
        self.backend = backend
        self.batch_size = batch_size
        self._step_seconds: float | None = None  # measured; sizes the next slice

    async def fit(self, xs: Sequence[array], ys: Sequence[int], epochs: int = 1, seed: int | None = None,
                  progress: ProgressFn | None = None, cancel: CancelToken | None = None,
                  between_epochs: EpochFn | None = None) -> FitResult:
        """Shuffled mini-batches for ``epochs``; ``between_epochs(e)`` runs after each epoch
        but the last (to pick up a newer global model). Raises :class:`Cancelled`."""
        if len(xs) != len(ys) or not xs:
            raise TrainerError("no labelled samples to train on")
        rng = random.Random(seed)
        order = list(range(len(xs)))
        batches = math.ceil(len(xs) / self.batch_size)
        samples = self.backend.samples(xs, ys)
        epoch_losses, steps = [], 0
        for epoch in range(epochs):
            rng.shuffle(order)
            total, b = 0.0, 0
            while b < batches:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled()
                k = self._slice(batches - b)
                idx = [order[i * self.batch_size:(i + 1) * self.batch_size] for i in range(b, b + k)]
                started = time.perf_counter()
                losses = await self.backend.train_steps(samples, idx)
                self._step_seconds = (time.perf_counter() - started) / k
                for part, loss in zip(idx, losses):
                    b += 1
                    total += loss * len(part)
                    steps += 1
                    if progress is not None:
                        result = progress(Progress(epoch, epochs, b, batches, loss))
                        if result is not None:
                            await result
                # the page's turn, once per slice: it draws the progress and sees a cancel click
                # (a turn per batch, taken by the page, made a 20-step round 3-12 ms slower here)
                await asyncio.sleep(0)
            epoch_losses.append(total / len(xs))
            if between_epochs is not None and epoch < epochs - 1:
                await between_epochs(epoch)
        return FitResult(epoch_losses, steps, len(xs))

    def _slice(self, left: int) -> int:
        """How many steps to hand over next: one until a step has been timed."""
        if self._step_seconds is None:
            return 1
        return max(1, min(left, int(SLICE_SECONDS / max(self._step_seconds, 1e-6))))

    async def predict_proba(self, xs: Sequence[array], batch_size: int = 64) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(xs), batch_size):
            chunk = xs[i:i + batch_size]
            _, logits = await self.backend.eval_step(concat(chunk), [0] * len(chunk))
            k = len(logits) // len(chunk)
            out += [softmax(logits[j * k:(j + 1) * k]) for j in range(len(chunk))]
        return out

    async def evaluate(self, xs: Sequence[array], ys: Sequence[int], num_classes: int,
                       batch_size: int = 64) -> dict:
        """Accuracy, mean loss, per-class accuracy and the confusion matrix [true][predicted]
        (:class:`~browser_py.scoring.Scores`)."""
        scores = Scores(num_classes)
        for i in range(0, len(xs), batch_size):
            chunk, labels = xs[i:i + batch_size], list(ys[i:i + batch_size])
            loss, logits = await self.backend.eval_step(concat(chunk), labels)
            scores.add(labels, logits, loss)
        return scores.summary()
