"""Multi-Krum: Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine Learning with
Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017.
https://proceedings.neurips.cc/paper/2017/hash/f4b9ec30ad9f68f89b29639786cb62ef-Abstract.html

Each update is scored by the summed squared distances to its n - f - 2 nearest other
updates; the m best-scored are averaged (m = n - f, the paper's Multi-Krum choice).
"""
from __future__ import annotations

import numpy as np


def krum_scores(rows: np.ndarray, byzantine: int) -> np.ndarray:
    """Score per row: sum of squared distances to its ``n - f - 2`` nearest neighbours
    (at least one neighbour, so small rounds still score)."""
    x = rows.astype(np.float64)
    sq = (x * x).sum(axis=1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    n = len(rows)
    neighbours = max(1, n - byzantine - 2)
    neighbours = min(neighbours, n - 1)
    if neighbours <= 0:
        return np.zeros(n)
    ordered = np.sort(dist, axis=1)[:, 1:neighbours + 1]  # column 0 is the row itself
    return ordered.sum(axis=1)


def multi_krum(rows: np.ndarray, byzantine: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The mean of the ``n - f`` best-scored rows (at least one) and which rows were chosen."""
    n = len(rows)
    keep = max(1, n - byzantine)
    chosen = np.argsort(krum_scores(rows, byzantine), kind="stable")[:keep]
    return rows[chosen].mean(axis=0, dtype=np.float64).astype(np.float32), chosen
