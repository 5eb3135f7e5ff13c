"""The model zoo: every model a task can use, by name.

Each entry is a :class:`ModelSpec` that knows how to build the network, what input it
takes, and how to split it into a frozen feature extractor and a trainable head.
"""
from __future__ import annotations

from .base import ModelSpec, Preprocessing, SplitModel
from .digits_cnn import DIGITS_CNN
from .mobilenet_v2 import MOBILENET_V2
from .niid_bench_cnn import NIID_BENCH_CNN

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (DIGITS_CNN, MOBILENET_V2, NIID_BENCH_CNN)}


def get_model(name: str) -> ModelSpec:
    """Look a model up by name; the error lists the names that exist."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}") from None


__all__ = ["MODELS", "ModelSpec", "Preprocessing", "SplitModel", "get_model"]
