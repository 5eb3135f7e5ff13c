"""Synchronous FedAvg rounds: McMahan et al., "Communication-Efficient Learning of Deep
Networks from Decentralized Data", AISTATS 2017. https://arxiv.org/abs/1602.05629

A round collects updates that started from the current global version; it closes when
``min_clients`` have arrived, or at ``deadline_seconds`` after its first update if at
least one arrived. The new model is the sample-weighted mean of the client models
(or a robust combination of their deltas). The server keeps at most one update per
participant in a round.
"""
from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from pydantic import Field

from .base import Aggregate, ClientUpdate, Strategy
from .combiners import CombinerParams, combine


class FedAvgParams(CombinerParams):
    name: Literal["fedavg"] = "fedavg"
    min_clients: int = Field(3, ge=1, le=10**4, description=(
        "a round closes when this many participants sent their update"))
    deadline_seconds: float | None = Field(None, gt=0, le=10**6, description=(
        "or this many seconds after its first update (empty: wait for everyone)"))


class FedAvg(Strategy):
    """Synchronous FedAvg; parameters in :class:`FedAvgParams`."""

    name = "fedavg"
    buffered = True
    synchronous = True
    paper = "McMahan et al. 2017, Communication-Efficient Learning of Deep Networks from Decentralized Data"
    summary = "Rounds: waits until enough participants sent an update, then averages them by image count."
    Params = FedAvgParams

    def __init__(self, **params) -> None:
        super().__init__(**params)
        p: FedAvgParams = self.params
        self.min_clients = p.min_clients
        self.deadline_seconds = p.deadline_seconds
        self.combiner = p.combiner

    def ready(self, pending: Sequence[ClientUpdate], now: float) -> bool:
        if len(pending) >= self.min_clients:
            return True
        if pending and self.deadline_seconds is not None:
            return now - min(u.received for u in pending) >= self.deadline_seconds
        return False

    def aggregate(self, current: np.ndarray, pending: Sequence[ClientUpdate]) -> Aggregate:
        samples = np.array([max(1, u.num_samples) for u in pending], dtype=np.float64)
        rows = np.stack([self.clipped(u) for u in pending])
        step, shares = combine(rows, samples, self.params)
        return Aggregate((current + step).astype(np.float32), shares)
