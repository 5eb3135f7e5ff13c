"""Centered clipping: Karimireddy, He, Jaggi, "Learning from History for Byzantine Robust
Optimization", ICML 2021. https://arxiv.org/abs/2012.10333

v <- v + mean_i clip(x_i - v, tau), repeated L times. The paper starts from the previous
round's momentum; a strategy here keeps no state between aggregations, so v starts at the
coordinate-wise median (a robust centre of this buffer) and, when ``tau`` is not set, the
radius is the median distance of the updates from it (the honest majority sets the scale).
"""
from __future__ import annotations

import numpy as np


def centered_clip(rows: np.ndarray, radius: float | None = None, iterations: int = 3) -> np.ndarray:
    x = rows.astype(np.float64)
    v = np.median(x, axis=0)
    for _ in range(iterations):
        diffs = x - v
        norms = np.linalg.norm(diffs, axis=1)
        tau = float(np.median(norms)) if radius is None else radius
        if tau <= 0:
            break
        scale = np.minimum(1.0, tau / np.maximum(norms, 1e-30))
        v = v + (diffs * scale[:, None]).mean(axis=0)
    return v.astype(np.float32)
