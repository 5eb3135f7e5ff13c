"""FedAsync: Xie, Koyejo, Gupta, "Asynchronous Federated Optimization", 2019.
https://arxiv.org/abs/1903.03934

Every update is merged on arrival: x <- (1 - a_t) x + a_t x_new with
a_t = alpha * s(t - tau) (divided by the number of recently active participants when
``share_among_active`` is on: our addition, not the paper's). With clipping on, x_new is replaced by x_base + clip(x_new - x_base).
The server also limits how far the *current* model moves per update
(:meth:`Strategy.bounded_aggregate`): a client that claims an old base, or sends an old
model as fresh, cannot drag the model further than that bound.
"""
from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from pydantic import Field

from .base import Aggregate, ClientUpdate, Strategy, StrategyParams
from .staleness import StalenessName, StalenessParams, make_staleness


class FedAsyncParams(StrategyParams):
    name: Literal["fedasync"] = "fedasync"
    alpha: float = Field(0.6, gt=0, le=1, description=(
        "how much a fresh update moves the shared model, from 0 (not at all) to 1 (replaces it); "
        "the paper's best was 0.6"))
    staleness: StalenessName = Field("polynomial", description=(
        "how an update's weight falls when other updates arrived while it was trained: "
        "polynomial (gently), hinge (full weight for a few versions, then steeply), constant (never)"))
    staleness_params: StalenessParams = Field(default_factory=StalenessParams, description=(
        "shape of the staleness curve; empty uses the paper's values"))
    share_among_active: bool = Field(False, description=(
        "divide alpha among the participants taking part lately (those behind the last 20 updates): with "
        "three taking turns, each update moves the model a third as far, so the model stops swinging "
        "toward whoever sent last; off: the paper's fixed alpha"))
    weight_by_samples: bool = Field(False, description=(
        "participants with fewer images than the reference count move the model less"))
    reference_samples: int = Field(100, ge=1, le=10**6, description="the image count that earns full weight")


class FedAsync(Strategy):
    """FedAsync; parameters in :class:`FedAsyncParams` (defaults from the paper)."""

    name = "fedasync"
    paper = "Xie, Koyejo, Gupta 2019, Asynchronous Federated Optimization (arXiv 1903.03934)"
    summary = "Merges every update as soon as it arrives; late updates count less."
    Params = FedAsyncParams

    def __init__(self, **params) -> None:
        super().__init__(**params)
        p: FedAsyncParams = self.params
        self.alpha = p.alpha
        self.staleness = make_staleness(p.staleness, p.staleness_params)
        self.weight_by_samples = p.weight_by_samples
        self.reference_samples = p.reference_samples
        self.share_among_active = p.share_among_active

    def mixing_weight(self, update: ClientUpdate) -> float:
        a = self.alpha * self.staleness(update.staleness)
        if self.share_among_active:
            a /= max(1, update.active_participants)
        if self.weight_by_samples:
            a *= min(1.0, update.num_samples / self.reference_samples)
        return a

    def ready(self, pending: Sequence[ClientUpdate], now: float) -> bool:
        return len(pending) > 0

    def aggregate(self, current: np.ndarray, pending: Sequence[ClientUpdate]) -> Aggregate:
        x = current
        weights = []
        for update in pending:
            a = self.mixing_weight(update)
            target = update.params if self.clip_norm is None else update.base + self.clipped(update)
            x = mix(x, target, a)
            weights.append(a)
        return Aggregate(x, weights)


def mix(x: np.ndarray, y: np.ndarray, a: float) -> np.ndarray:
    """(1 - a) x + a y, in float32, with two passes over memory and no extra temporaries."""
    out = np.subtract(y, x, dtype=np.float32)
    out *= np.float32(a)
    out += x
    return out
