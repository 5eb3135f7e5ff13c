"""How the buffered and synchronous strategies combine several client changes into one:
the weighted mean, or a robust combiner (each in the module of its paper)."""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from .base import StrategyParams
from .centered_clipping import centered_clip
from .multikrum import multi_krum
from .robust import coordinate_median, trimmed_mean, weighted_mean

CombinerName = Literal["mean", "median", "trimmed_mean", "multi_krum", "centered_clipping"]


class CombinerParams(StrategyParams):
    """Parameters of the combiner, shared by FedBuff and FedAvg."""

    combiner: CombinerName = Field("mean", description=(
        "mean: the plain (weighted) average; median, trimmed_mean (Yin et al. 2018), multi_krum "
        "(Blanchard et al. 2017) and centered_clipping (Karimireddy et al. 2021) resist a few bad updates"))
    trim: float = Field(0.1, gt=0, lt=0.5, description=(
        "trimmed mean: the share of highest and lowest values dropped per coordinate (at least one each)"))
    krum_byzantine: int = Field(1, ge=0, le=1000, description=(
        "Multi-Krum: how many bad participants to tolerate; that many updates are left out"))
    cc_radius: float | None = Field(None, gt=0, le=1e6, description=(
        "centered clipping: the clipping radius (empty: the median distance of the updates)"))
    cc_iterations: int = Field(3, ge=1, le=100, description="centered clipping: refinement passes")


def combine(rows: np.ndarray, weights: np.ndarray, params: CombinerParams) -> tuple[np.ndarray, list[float]]:
    """Combined change and the share each row got (weights are used by the mean only)."""
    n = len(rows)
    how = params.combiner
    if how == "mean":
        w = np.asarray(weights, dtype=np.float64)
        return weighted_mean(rows, w), (w / w.sum()).tolist()
    if how == "median":
        return coordinate_median(rows), [1 / n] * n
    if how == "trimmed_mean":
        return trimmed_mean(rows, params.trim), [1 / n] * n
    if how == "multi_krum":
        step, chosen = multi_krum(rows, params.krum_byzantine)
        share = np.zeros(n)
        share[chosen] = 1 / len(chosen)
        return step, share.tolist()
    if how == "centered_clipping":
        return centered_clip(rows, params.cc_radius, params.cc_iterations), [1 / n] * n
    raise ValueError(f"unknown combiner {how!r}")
