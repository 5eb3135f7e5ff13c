"""Synchronous FedAvg rounds: McMahan et al., "Communication-Efficient Learning of Deep
Networks from Decentralized Data", AISTATS 2017. https://arxiv.org/abs/1602.05629

A round collects updates that started from the current global version; it closes when
``min_clients`` have arrived, or at ``deadline_seconds`` after its first update if at
least one arrived. The new model is the sample-weighted mean of the client models
(or a robust combination of their deltas).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import Aggregate, ClientUpdate, Strategy
from .robust import combine


class FedAvg(Strategy):
    """Synchronous FedAvg.

    Parameters
    ----------
    min_clients : int (default: 3)
    deadline_seconds : float | None (default: None = wait for min_clients)
    combiner : str (default: "mean", weighted by samples); ``median``, ``trimmed_mean``
    trim : float (default: 0.1)
    """

    name = "fedavg"
    buffered = True
    synchronous = True  # updates must start from the current version
    paper = "McMahan et al. 2017, Communication-Efficient Learning of Deep Networks from Decentralized Data"
    summary = "Synchronous rounds: waits for enough participants, then averages by sample count."
    form = (
        {"name": "min_clients", "kind": "int", "default": 3, "help": "a round closes when this many updates arrived"},
        {"name": "deadline_seconds", "kind": "number", "default": None,
         "help": "or this many seconds after its first update"},
        {"name": "combiner", "kind": "choice", "choices": ["mean", "median", "trimmed_mean"], "default": "mean",
         "help": "median / trimmed mean resist a few bad updates (Yin et al. 2018)"},
        {"name": "clip_norm", "kind": "number", "default": None, "help": "clip each update's change to this L2 norm"},
    )

    def __init__(self, min_clients: int = 3, deadline_seconds: float | None = None,
                 combiner: str = "mean", trim: float = 0.1, clip_norm: float | None = None) -> None:
        super().__init__(clip_norm)
        if min_clients < 1:
            raise ValueError(f"min_clients must be at least 1, got {min_clients}")
        if deadline_seconds is not None and not deadline_seconds > 0:
            raise ValueError(f"deadline_seconds must be positive, got {deadline_seconds}")
        combine(np.zeros((1, 1), np.float32), np.ones(1), combiner, trim)
        self.min_clients = min_clients
        self.deadline_seconds = deadline_seconds
        self.combiner = combiner
        self.trim = trim

    def ready(self, pending: Sequence[ClientUpdate], now: float) -> bool:
        if len(pending) >= self.min_clients:
            return True
        if pending and self.deadline_seconds is not None:
            return now - min(u.received for u in pending) >= self.deadline_seconds
        return False

    def aggregate(self, current: np.ndarray, pending: Sequence[ClientUpdate]) -> Aggregate:
        samples = np.array([max(1, u.num_samples) for u in pending], dtype=np.float64)
        rows = np.stack([self.clipped(u) for u in pending])
        step = combine(rows, samples, self.combiner, self.trim)
        weights = (samples / samples.sum()).tolist() if self.combiner == "mean" else [1 / len(pending)] * len(pending)
        return Aggregate((current + step).astype(np.float32), weights)

    def describe(self) -> dict:
        return super().describe() | {"min_clients": self.min_clients,
                                     "deadline_seconds": self.deadline_seconds, "combiner": self.combiner}
