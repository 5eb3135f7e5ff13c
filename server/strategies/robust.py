"""Robust combinations of client deltas for the buffered and synchronous strategies.

- coordinate-wise median and trimmed mean: Yin, Chen, Ramchandran, Bartlett,
  "Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates", ICML 2018.
  https://arxiv.org/abs/1803.01498
"""
from __future__ import annotations

import numpy as np

COMBINERS = ("mean", "median", "trimmed_mean")


def weighted_mean(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return (w @ rows.astype(np.float64) / w.sum()).astype(np.float32)


def coordinate_median(rows: np.ndarray) -> np.ndarray:
    return np.median(rows, axis=0).astype(np.float32)


def trimmed_mean(rows: np.ndarray, trim: float = 0.1) -> np.ndarray:
    """Drop the ``trim`` fraction of largest and of smallest values per coordinate."""
    if not 0 <= trim < 0.5:
        raise ValueError(f"trim must be in [0, 0.5), got {trim}")
    n = rows.shape[0]
    k = int(np.floor(trim * n))
    if k == 0:
        return rows.mean(axis=0, dtype=np.float64).astype(np.float32)
    ordered = np.sort(rows, axis=0)
    return ordered[k:n - k].mean(axis=0, dtype=np.float64).astype(np.float32)


def combine(rows: np.ndarray, weights: np.ndarray, how: str = "mean", trim: float = 0.1) -> np.ndarray:
    """Combine stacked rows: weighted ``mean``, ``median`` or ``trimmed_mean`` (unweighted)."""
    if how == "mean":
        return weighted_mean(rows, weights)
    if how == "median":
        return coordinate_median(rows)
    if how == "trimmed_mean":
        return trimmed_mean(rows, trim)
    raise ValueError(f"unknown combiner {how!r}; choose one of {', '.join(COMBINERS)}")
