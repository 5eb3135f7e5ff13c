"""A small CNN for 28x28 grayscale digits; every layer trains (no frozen part)."""
from __future__ import annotations

import torch
from torch import nn

from .base import ModelSpec, Normalise, Preprocessing, SplitModel

PRE = Preprocessing(color="L", size=(28, 28), mean=(0.1307,), std=(0.3081,))


class DigitsCNN(nn.Module):
    """Two conv blocks and two linear layers: ~56k parameters, a few ms per batch."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.normalise = Normalise(PRE)
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2),   # 16x13x13
            nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),  # 32x5x5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 5 * 5, 64), nn.ReLU(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.conv(self.normalise(x)))


def _split(num_classes: int, train_blocks: int) -> SplitModel:
    # Everything trains; train_blocks has no meaning here beyond 0.
    return SplitModel(features=None, head=DigitsCNN(num_classes), feature_shape=PRE.input_shape)


DIGITS_CNN = ModelSpec(
    name="digits_cnn",
    description="small CNN for 28x28 grayscale digits, trained from scratch (all layers)",
    preprocessing=PRE,
    max_train_blocks=0,
    split=_split,
    suggested_lr=0.003,
    advice=("For small grayscale pictures such as handwritten digits (every photo is shrunk to 28x28 pixels). "
            "The whole network learns from scratch, so it needs a few dozen labelled photos per class. "
            "A learning rate of 0.003 to 0.01 works well; trainable blocks do not apply."),
)
