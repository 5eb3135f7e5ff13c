"""The one small interface every aggregation strategy implements.

A strategy is pure: numpy arrays and numbers in, numpy arrays out; no Flask, no I/O.
The server feeds it the updates that are pending for a task (persisted before they are
acknowledged, so a buffer survives a crash) and asks two questions: is it time to
aggregate, and what is the new global model.

Each strategy declares its parameters once, as a pydantic model (``Params``): the same
declaration validates a task's config (with readable errors), documents the API and
builds the admin's form (names, bounds, defaults, help).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class StrategyParams(BaseModel):
    """Parameters every strategy takes. Subclasses add their own with bounds and help."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    clip_norm: float | None = Field(
        None, gt=0, le=1e6, description="clip each update's change to this L2 norm (empty: off)")


@dataclass(frozen=True)
class ClientUpdate:
    """One client's result: its new local parameters and where it started from.

    ``base`` is the global vector of ``base_version`` (the client's starting point);
    ``staleness`` is how many global versions appeared since then. ``num_samples`` is the
    weight the server grants (the client's claim, capped by the task).
    """

    params: np.ndarray
    base: np.ndarray
    num_samples: int
    staleness: int
    received: float = 0.0  # seconds since the epoch, for deadlines
    active_participants: int = 1  # distinct participants among the task's recent updates, this one's included

    @property
    def delta(self) -> np.ndarray:
        return self.params - self.base


@dataclass
class Aggregate:
    """A new global model and, per consumed update, the weight it was given."""

    params: np.ndarray
    weights: list[float] = field(default_factory=list)


class Strategy(ABC):
    """Base of all strategies: ``Strategy(**params)`` validates against ``Params`` and
    raises ``ValueError`` (pydantic's ValidationError is one) for bad values."""

    name: ClassVar[str] = ""
    buffered: ClassVar[bool] = False  # whether updates wait for one another
    synchronous: ClassVar[bool] = False  # whether updates must start from the current version
    paper: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Params: ClassVar[type[StrategyParams]] = StrategyParams

    def __init__(self, **params: Any) -> None:
        self.params = self.Params(**params)
        self.clip_norm = self.params.clip_norm

    @abstractmethod
    def ready(self, pending: Sequence[ClientUpdate], now: float) -> bool:
        """Whether the pending updates should be aggregated now."""

    @abstractmethod
    def aggregate(self, current: np.ndarray, pending: Sequence[ClientUpdate]) -> Aggregate:
        """The new global model from ``current`` and the pending updates."""

    def bounded_aggregate(self, current: np.ndarray, pending: Sequence[ClientUpdate],
                          max_move: float | None) -> Aggregate:
        """:meth:`aggregate`, then the step from ``current`` limited to ``max_move`` (L2).

        Whatever base the clients claim and whatever they send, the global model moves by
        at most ``max_move`` per aggregation."""
        result = self.aggregate(current, pending)
        if max_move is not None:
            result.params = limit_step(current, result.params, max_move)
        return result

    def clipped(self, update: ClientUpdate) -> np.ndarray:
        """The update's delta, scaled to at most ``clip_norm`` in L2 norm."""
        return clip(update.delta, self.clip_norm)


def clip(vector: np.ndarray, bound: float | None) -> np.ndarray:
    """``vector`` scaled down to at most ``bound`` in L2 norm (unchanged when within)."""
    if bound is None:
        return vector
    norm = float(np.linalg.norm(vector.astype(np.float64)))
    return vector if norm <= bound else (vector * (bound / norm)).astype(vector.dtype)


def limit_step(current: np.ndarray, new: np.ndarray, max_move: float) -> np.ndarray:
    """``new``, pulled back towards ``current`` so the two are at most ``max_move`` apart."""
    step = np.subtract(new, current, dtype=np.float64)
    norm = float(np.linalg.norm(step))
    if norm <= max_move:
        return new
    # a hair inside the bound, so float32 rounding cannot push it over
    return (current + step * (max_move * (1 - 1e-6) / norm)).astype(np.float32)
