"""What a model in the zoo must provide."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn


@dataclass(frozen=True)
class Preprocessing:
    """How raw images become the model's input, defined once for every client.

    Clients only decode, convert to ``color`` and resize to ``size`` (width, height),
    then hand float32 pixels in [0, 255], NCHW, to the model. Scaling and normalisation
    by ``mean``/``std`` live inside the exported graph, so the browser and CPython
    cannot disagree about them.
    """

    color: str  # "L" (grayscale) or "RGB"
    size: tuple[int, int]  # (width, height)
    mean: tuple[float, ...]  # per channel, on the [0, 1] scale
    std: tuple[float, ...]

    @property
    def channels(self) -> int:
        return 1 if self.color == "L" else 3

    @property
    def input_shape(self) -> list[int]:
        """Shape of one sample, channels first."""
        return [self.channels, self.size[1], self.size[0]]

    def to_manifest(self) -> dict:
        d = asdict(self)
        d.update(size=list(self.size), mean=list(self.mean), std=list(self.std),
                 layout="NCHW", dtype="float32", range=[0, 255],
                 normalisation="in-graph: (x / 255 - mean) / std")
        return d


class Normalise(nn.Module):
    """(x / 255 - mean) / std, as the first op of every exported graph."""

    def __init__(self, pre: Preprocessing) -> None:
        super().__init__()
        c = pre.channels
        self.register_buffer("scale", torch.tensor([1 / (255 * s) for s in pre.std]).view(1, c, 1, 1))
        self.register_buffer("shift", torch.tensor([m / s for m, s in zip(pre.mean, pre.std)]).view(1, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale - self.shift


@dataclass
class SplitModel:
    """A network cut in two: ``features`` is frozen (None when everything trains)."""

    features: nn.Module | None
    head: nn.Module
    feature_shape: list[int]  # shape of one sample at the cut (the head's input)
    # For "why this label?" (class activation maps): the frozen layers up to the last spatial
    # map, whose channel means are ``features``, and the names of the head's linear weight
    # and bias over those channels. Only when the head is that one linear layer.
    spatial: nn.Module | None = None
    explain: dict | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A zoo entry.

    ``split(num_classes, train_blocks)`` returns the model with a fresh classifier for
    the task's classes, already including :class:`Normalise` at its start.
    ``max_train_blocks`` bounds ``train_blocks``; ``source_weights`` names where the
    pretrained weights come from (None for models trained from scratch). ``advice`` is
    what the admin's form says when this model is chosen (photos it suits, settings).
    """

    name: str
    description: str
    preprocessing: Preprocessing
    max_train_blocks: int
    split: Callable[[int, int], SplitModel]
    advice: str = ""
    suggested_lr: float | None = None  # the admin form proposes it when this model is chosen
    source_weights: dict | None = None
