"""Which way an update points, compared with what the other participants recently did.

A guard against updates that would undo the others' work (a reversed change, an old
model sent as new): each update's change is compressed to a count sketch (every
coordinate hashed to one of ``DIMS`` buckets with a random sign; inner products and so
cosines are preserved in expectation, and it costs one pass and 4 KB per update). The
reference is the coordinate-wise median of the latest sketch of each of the other recent
participants (at least :data:`MIN_PARTICIPANTS`), so no single participant, however
early or often it posts, can steer it. An update whose cosine with it is negative is kept
but not merged. This is a trust score in the spirit of FLTrust (Cao, Fang, Liu, Gong,
NDSS 2021, https://arxiv.org/abs/2012.13995), with the participants' median as the
reference instead of a server-held dataset.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

DIMS = 1024
MIN_PARTICIPANTS = 3


@lru_cache(maxsize=8)
def _hashing(size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20260101)  # fixed: sketches must stay comparable across restarts
    return rng.integers(0, DIMS, size, dtype=np.int32), rng.choice(np.array([-1.0, 1.0]), size)


def sketch(change: np.ndarray) -> np.ndarray:
    buckets, signs = _hashing(change.size)
    return np.bincount(buckets, weights=signs * change.astype(np.float64), minlength=DIMS).astype(np.float32)


def reference(others: list[np.ndarray]) -> np.ndarray | None:
    """The median direction of the other participants' latest sketches, or None when too few."""
    if len(others) < MIN_PARTICIPANTS:
        return None
    return np.median(np.stack(others), axis=0)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two vectors (0 if either is zero)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return 0.0 if na == 0 or nb == 0 else float(a @ b / (na * nb))
