"""The 2-conv CNN that NIID-Bench trains on MNIST and Fashion-MNIST.

Li, Diao, Chen, He: "Federated Learning on Non-IID Data Silos: An Experimental Study"
(ICDE 2022), https://arxiv.org/abs/2102.02079. LeNet-5 shaped: two 5x5 convolutions
(6 and 16 channels) with max pooling, then 120 -> 84 -> classes; every layer trains.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import ModelSpec, Normalise, Preprocessing, SplitModel

# Fashion-MNIST's pixel statistics over its 60,000 training images.
PRE = Preprocessing(color="L", size=(28, 28), mean=(0.2860,), std=(0.3530,))


class NiidBenchCNN(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.normalise = Normalise(PRE)
        self.conv = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),    # 6x12x12
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),   # 16x4x4
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 4 * 4, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.conv(self.normalise(x)))


def _split(num_classes: int, train_blocks: int) -> SplitModel:
    return SplitModel(features=None, head=NiidBenchCNN(num_classes), feature_shape=PRE.input_shape)


NIID_BENCH_CNN = ModelSpec(
    name="niid_bench_cnn",
    description="NIID-Bench's 2-conv CNN for 28x28 grayscale images (Fashion-MNIST), trained from scratch",
    preprocessing=PRE,
    max_train_blocks=0,
    split=_split,
    suggested_lr=0.001,
    advice=("NIID-Bench's network for 28x28 grayscale pictures such as Fashion-MNIST, learned from scratch. "
            "NIID-Bench trains it with a learning rate of 0.001 (SGD-style settings may need more); "
            "trainable blocks do not apply."),
)
