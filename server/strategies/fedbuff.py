"""FedBuff: Nguyen et al., "Federated Learning with Buffered Asynchronous Aggregation",
AISTATS 2022. https://arxiv.org/abs/2106.06639

Client deltas wait in a buffer; when K have arrived the server applies
x <- x + eta_g * combine(s(tau_i) * delta_i) and empties the buffer. The paper's
staleness weight is 1 / sqrt(1 + tau) (polynomial with a = 0.5). The server keeps at most
one update per participant in a buffer, so one participant cannot fill it.
"""
from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from pydantic import Field

from .base import Aggregate, ClientUpdate, Strategy
from .combiners import CombinerParams, combine
from .staleness import StalenessName, StalenessParams, make_staleness


class FedBuffParams(CombinerParams):
    name: Literal["fedbuff"] = "fedbuff"
    buffer_size: int = Field(10, ge=1, le=10**4, description=(
        "K: how many updates (from different participants) are collected before the model changes"))
    server_lr: float = Field(1.0, gt=0, le=100, description="server learning rate applied to the combined change")
    staleness: StalenessName = Field("polynomial", description=(
        "how a late update's change is weighted (paper: polynomial, 1/sqrt(1+staleness))"))
    staleness_params: StalenessParams = Field(default_factory=StalenessParams, description=(
        "shape of the staleness curve; empty uses the paper's values"))


class FedBuff(Strategy):
    """FedBuff; parameters in :class:`FedBuffParams` (defaults from the paper)."""

    name = "fedbuff"
    buffered = True
    paper = "Nguyen et al. 2022, Federated Learning with Buffered Asynchronous Aggregation (arXiv 2106.06639)"
    summary = "Collects a few updates, then applies their combined change."
    Params = FedBuffParams

    def __init__(self, **params) -> None:
        super().__init__(**params)
        p: FedBuffParams = self.params
        self.buffer_size = p.buffer_size
        self.server_lr = p.server_lr
        self.staleness = make_staleness(p.staleness, p.staleness_params)
        self.combiner = p.combiner

    def ready(self, pending: Sequence[ClientUpdate], now: float) -> bool:
        return len(pending) >= self.buffer_size

    def aggregate(self, current: np.ndarray, pending: Sequence[ClientUpdate]) -> Aggregate:
        weights = np.array([self.staleness(u.staleness) for u in pending])
        n = len(pending)
        if self.combiner == "mean":
            rows = np.stack([self.clipped(u) for u in pending])
            step, _ = combine(rows, weights, self.params)
            step = step * np.float32(weights.sum() / n)
            shares = [float(w) / n for w in weights]
        else:  # robust combiners are unweighted: scale each delta first
            rows = np.stack([self.clipped(u) * np.float32(w) for u, w in zip(pending, weights)])
            step, shares = combine(rows, weights, self.params)
        return Aggregate((current + np.float32(self.server_lr) * step).astype(np.float32), shares)
