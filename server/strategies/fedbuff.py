"""FedBuff: Nguyen et al., "Federated Learning with Buffered Asynchronous Aggregation",
AISTATS 2022. https://arxiv.org/abs/2106.06639

Client deltas wait in a buffer; when K have arrived the server applies
x <- x + eta_g * combine(s(tau_i) * delta_i) and empties the buffer. The paper's
staleness weight is 1 / sqrt(1 + tau) (polynomial with a = 0.5).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import Aggregate, ClientUpdate, Strategy
from .robust import combine
from .staleness import make_staleness


class FedBuff(Strategy):
    """FedBuff.

    Parameters
    ----------
    buffer_size : int (default: 10, the paper's K)
    server_lr : float (default: 1.0)
    staleness : str (default: "polynomial", a = 0.5)
    combiner : str (default: "mean")
        ``mean`` (weighted by staleness), ``median`` or ``trimmed_mean`` (robust).
    trim : float (default: 0.1), for ``trimmed_mean``
    """

    name = "fedbuff"
    buffered = True
    paper = "Nguyen et al. 2022, Federated Learning with Buffered Asynchronous Aggregation (arXiv 2106.06639)"
    summary = "Collects K updates, then applies their staleness-weighted mean change."
    form = (
        {"name": "buffer_size", "kind": "int", "default": 10, "help": "K: updates per aggregation"},
        {"name": "server_lr", "kind": "number", "default": 1.0, "help": "server learning rate on the mean change"},
        {"name": "staleness", "kind": "choice", "choices": ["constant", "polynomial", "hinge"],
         "default": "polynomial", "help": "weight of a stale change (paper: 1/sqrt(1+staleness))"},
        {"name": "combiner", "kind": "choice", "choices": ["mean", "median", "trimmed_mean"], "default": "mean",
         "help": "median / trimmed mean resist a few bad updates (Yin et al. 2018)"},
        {"name": "clip_norm", "kind": "number", "default": None, "help": "clip each update's change to this L2 norm"},
    )

    def __init__(self, buffer_size: int = 10, server_lr: float = 1.0, staleness: str = "polynomial",
                 staleness_params: dict | None = None, combiner: str = "mean", trim: float = 0.1,
                 clip_norm: float | None = None) -> None:
        super().__init__(clip_norm)
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be at least 1, got {buffer_size}")
        if not server_lr > 0:
            raise ValueError(f"server_lr must be positive, got {server_lr}")
        self.buffer_size = buffer_size
        self.server_lr = server_lr
        self.staleness = make_staleness(staleness, **(staleness_params or {}))
        combine(np.zeros((1, 1), np.float32), np.ones(1), combiner, trim)  # validates the choice
        self.combiner = combiner
        self.trim = trim

    def ready(self, pending: Sequence[ClientUpdate], now: float) -> bool:
        return len(pending) >= self.buffer_size

    def aggregate(self, current: np.ndarray, pending: Sequence[ClientUpdate]) -> Aggregate:
        weights = np.array([self.staleness(u.staleness) for u in pending])
        if self.combiner == "mean":
            rows = np.stack([self.clipped(u) for u in pending])
            step = combine(rows, weights, "mean") * np.float32(weights.sum() / len(pending))
        else:  # robust combiners are unweighted: scale each delta first
            rows = np.stack([self.clipped(u) * np.float32(w) for u, w in zip(pending, weights)])
            step = combine(rows, weights, self.combiner, self.trim)
        return Aggregate((current + np.float32(self.server_lr) * step).astype(np.float32),
                         [float(w) / len(pending) for w in weights])

    def describe(self) -> dict:
        return super().describe() | {"buffer_size": self.buffer_size, "server_lr": self.server_lr,
                                     "staleness": self.staleness.name, "combiner": self.combiner}
