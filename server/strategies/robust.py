"""Coordinate-wise median and trimmed mean: Yin, Chen, Ramchandran, Bartlett,
"Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates", ICML 2018.
https://arxiv.org/abs/1803.01498
"""
from __future__ import annotations

import numpy as np


def weighted_mean(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return (w @ rows.astype(np.float64) / w.sum()).astype(np.float32)


def coordinate_median(rows: np.ndarray) -> np.ndarray:
    return np.median(rows, axis=0).astype(np.float32)


def trim_count(n: int, trim: float) -> int:
    """How many values to drop at each end: ``floor(trim * n)``, but at least one whenever
    that leaves something (with 3 updates and trim 0.1 the paper's rule drops nothing,
    which would make the "robust" option a plain mean)."""
    k = int(np.floor(trim * n))
    if k == 0 and n >= 3:
        k = 1
    return min(k, (n - 1) // 2)


def trimmed_mean(rows: np.ndarray, trim: float = 0.1) -> np.ndarray:
    """Drop the ``trim`` fraction (at least one) of largest and smallest values per coordinate."""
    if not 0 < trim < 0.5:
        raise ValueError(f"trim must be in (0, 0.5), got {trim}")
    n = rows.shape[0]
    k = trim_count(n, trim)
    if k == 0:
        return rows.mean(axis=0, dtype=np.float64).astype(np.float32)
    ordered = np.sort(rows, axis=0)
    return ordered[k:n - k].mean(axis=0, dtype=np.float64).astype(np.float32)
