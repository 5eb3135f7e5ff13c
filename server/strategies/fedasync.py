"""FedAsync: Xie, Koyejo, Gupta, "Asynchronous Federated Optimization", 2019.
https://arxiv.org/abs/1903.03934

Every update is merged on arrival: x <- (1 - a_t) x + a_t x_new with
a_t = alpha * s(t - tau). With clipping on, x_new is replaced by x + clip(x_new - x_base),
so a clipped update moves the model by at most ``clip_norm`` before mixing.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import Aggregate, ClientUpdate, Strategy
from .staleness import make_staleness


class FedAsync(Strategy):
    """FedAsync.

    Parameters
    ----------
    alpha : float (default: 0.6, the paper's best in its MNIST/CIFAR runs)
        Base mixing weight, in (0, 1].
    staleness : str (default: "polynomial")
        ``constant``, ``polynomial`` or ``hinge``.
    staleness_params : dict (default: {} -> a=0.5 for polynomial, a=10, b=4 for hinge)
    weight_by_samples : bool (default: False)
        Scale a_t by n / reference_samples (capped at 1), so small local datasets move the
        model less.
    reference_samples : int (default: 100)
    """

    name = "fedasync"
    paper = "Xie, Koyejo, Gupta 2019, Asynchronous Federated Optimization (arXiv 1903.03934)"
    summary = "Merges every update on arrival, weighted down the staler it is."
    form = (
        {"name": "alpha", "kind": "number", "default": 0.6, "help": "mixing weight for a fresh update, in (0, 1]"},
        {"name": "staleness", "kind": "choice", "choices": ["constant", "polynomial", "hinge"],
         "default": "polynomial", "help": "how weight falls with staleness: polynomial (t-tau+1)^-a with a=0.5, "
                                          "hinge: 1 until b=4 versions, then 1/(a(t-tau-b)+1) with a=10"},
        {"name": "weight_by_samples", "kind": "bool", "default": False,
         "help": "scale the weight by the update's sample count / 100 (at most 1)"},
        {"name": "clip_norm", "kind": "number", "default": None, "help": "clip each update's change to this L2 norm"},
    )

    def __init__(self, alpha: float = 0.6, staleness: str = "polynomial",
                 staleness_params: dict | None = None, weight_by_samples: bool = False,
                 reference_samples: int = 100, clip_norm: float | None = None) -> None:
        super().__init__(clip_norm)
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if reference_samples < 1:
            raise ValueError("reference_samples must be at least 1")
        self.alpha = alpha
        self.staleness = make_staleness(staleness, **(staleness_params or {}))
        self.weight_by_samples = weight_by_samples
        self.reference_samples = reference_samples

    def mixing_weight(self, update: ClientUpdate) -> float:
        a = self.alpha * self.staleness(update.staleness)
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

    def describe(self) -> dict:
        return super().describe() | {"alpha": self.alpha, "staleness": self.staleness.name,
                                     "weight_by_samples": self.weight_by_samples}


def mix(x: np.ndarray, y: np.ndarray, a: float) -> np.ndarray:
    """(1 - a) x + a y, in float32, with two passes over memory and no extra temporaries."""
    out = np.subtract(y, x, dtype=np.float32)
    out *= np.float32(a)
    out += x
    return out
