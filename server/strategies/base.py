"""The one small interface every aggregation strategy implements.

A strategy is pure: numpy arrays and numbers in, numpy arrays out; no Flask, no I/O.
The server feeds it the updates that are pending for a task (persisted before they are
acknowledged, so a buffer survives a crash) and asks two questions: is it time to
aggregate, and what is the new global model.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class ClientUpdate:
    """One client's result: its new local parameters and where it started from.

    ``base`` is the global vector of ``base_version`` (the client's starting point);
    ``staleness`` is how many global versions appeared since then.
    """

    params: np.ndarray
    base: np.ndarray
    num_samples: int
    staleness: int
    received: float = 0.0  # seconds since the epoch, for deadlines

    @property
    def delta(self) -> np.ndarray:
        return self.params - self.base


@dataclass
class Aggregate:
    """A new global model and, per consumed update, the weight it was given."""

    params: np.ndarray
    weights: list[float] = field(default_factory=list)


class Strategy(ABC):
    """Base of all strategies.

    Parameters
    ----------
    clip_norm : float | None (default: None)
        If set, every update's delta from its base is scaled down to at most this L2
        norm before aggregation (a robustness option available to every strategy).
    """

    name: str = ""
    buffered: bool = False  # whether updates wait for one another
    paper: str = ""
    summary: str = ""
    form: tuple[dict, ...] = ()  # parameters for the admin's task form: name, kind, default, help

    def __init__(self, clip_norm: float | None = None) -> None:
        if clip_norm is not None and not clip_norm > 0:
            raise ValueError(f"clip_norm must be positive, got {clip_norm}")
        self.clip_norm = clip_norm

    @abstractmethod
    def ready(self, pending: Sequence[ClientUpdate], now: float) -> bool:
        """Whether the pending updates should be aggregated now."""

    @abstractmethod
    def aggregate(self, current: np.ndarray, pending: Sequence[ClientUpdate]) -> Aggregate:
        """The new global model from ``current`` and the pending updates."""

    def clipped(self, update: ClientUpdate) -> np.ndarray:
        """The update's delta, scaled to at most ``clip_norm`` in L2 norm."""
        delta = update.delta
        if self.clip_norm is None:
            return delta
        norm = float(np.linalg.norm(delta))
        return delta if norm <= self.clip_norm else delta * (self.clip_norm / norm)

    def describe(self) -> dict:
        """Parameters for metrics and the admin UI."""
        return {"name": self.name, "clip_norm": self.clip_norm}
