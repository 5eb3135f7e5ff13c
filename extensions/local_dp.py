"""Local differential privacy for updates: clip, then add Gaussian noise.

Each update's change from the global model it started from is clipped to L2 norm ``C``
(``clip``) and Gaussian noise with standard deviation ``sigma = z * C`` (``noise_multiplier``)
is added to every coordinate, so what leaves the device is the Gaussian mechanism with
sensitivity C. The privacy spent is reported per round with the Renyi-DP accountant for
the Gaussian mechanism (Mironov, "Renyi Differential Privacy", CSF 2017, Prop. 3 and 7):
after T releases RDP(alpha) = T alpha / (2 z^2), turned into (epsilon, delta) with the
conversion of Balle et al., "Hypothesis Testing Interpretations and Renyi Differential
Privacy", AISTATS 2020, Prop. 12: epsilon = min over alpha of
RDP(alpha) + log((alpha - 1) / alpha) - (log(delta) + log(alpha)) / (alpha - 1).
It is pure Python so it runs in the browser; the tests check it against Google's
dp-accounting library.

Task config: ``{"name": "local_dp", "params": {"clip": 1.0, "noise_multiplier": 1.1, "delta": 1e-5}}``.
"""
from __future__ import annotations

import math
import random
from array import array

from browser_py.extensions import Context, Extension, Update, register

ORDERS = [1 + x / 10.0 for x in range(1, 100)] + [float(a) for a in range(12, 64)] + [128.0, 256.0, 512.0]


def gaussian_epsilon(noise_multiplier: float, rounds: int, delta: float) -> float:
    """(epsilon, delta)-DP of ``rounds`` Gaussian releases with noise multiplier z (RDP accountant)."""
    if rounds == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    z2 = noise_multiplier ** 2
    return max(0.0, min(rounds * a / (2 * z2) + math.log1p(-1 / a) - (math.log(delta) + math.log(a)) / (a - 1)
                        for a in ORDERS))


@register
class LocalDP(Extension):
    name = "local_dp"
    title = "Local differential privacy"
    runs_last = True  # nothing after it may replace the noised change with the raw one

    def __init__(self, clip: float = 1.0, noise_multiplier: float = 1.1, delta: float = 1e-5,
                 seed: int | None = None) -> None:
        super().__init__(clip=clip, noise_multiplier=noise_multiplier, delta=delta, seed=seed)
        if not clip > 0 or not noise_multiplier >= 0 or not 0 < delta < 1:
            raise ValueError("local_dp needs clip > 0, noise_multiplier >= 0 and 0 < delta < 1")
        self.clip, self.z, self.delta = clip, noise_multiplier, delta
        self.rng = random.Random(seed)
        self.rounds = 0
        self.last_norm = 0.0

    def before_send(self, ctx: Context, update: Update) -> Update:
        delta = [p - b for p, b in zip(update.params, update.base)]
        norm = math.sqrt(sum(d * d for d in delta))
        self.last_norm = norm
        scale = min(1.0, self.clip / norm) if norm > 0 else 1.0
        sigma = self.z * self.clip
        gauss = self.rng.gauss
        noisy = array("f", (b + d * scale + gauss(0.0, sigma) for b, d in zip(update.base, delta)))
        self.rounds += 1
        update.params = noisy
        return update

    def epsilon(self) -> float:
        return gaussian_epsilon(self.z, self.rounds, self.delta)

    def metrics(self, ctx: Context, update: Update) -> dict[str, float]:
        if getattr(self, "_box", None) is not None:
            self._box.textContent = self._describe()
        eps = self.epsilon()
        finite = {"dp_epsilon": eps} if math.isfinite(eps) else {}  # no noise: no finite guarantee
        return finite | {"dp_delta": self.delta, "dp_rounds": float(self.rounds),
                "dp_clip": self.clip, "dp_noise_multiplier": self.z}

    def panel(self, ctx: Context):
        import js

        box = js.document.createElement("div")
        box.id = "dp-panel"
        box.textContent = self._describe()
        self._box = box  # updated after every update sent
        return box

    def _describe(self) -> str:
        if self.z == 0:
            return f"Your updates are clipped to norm {self.clip:g}; noise is off, so no privacy guarantee."
        return (f"Your updates are clipped to norm {self.clip:g} and noised (z = {self.z:g}). "
                f"Privacy spent so far: epsilon = {self.epsilon():.2f} at delta = {self.delta:g} "
                f"after {self.rounds} update{'s' if self.rounds != 1 else ''}.")
