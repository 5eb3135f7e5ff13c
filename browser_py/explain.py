"""Why this label? Class activation maps (Zhou et al., CVPR 2016, "Learning Deep Features
for Discriminative Localization").

When the head is one linear layer over the channel means of the backbone's last spatial
map F (channels K, height H, width W), the score of class c is
``b_c + sum_k w_ck * mean_xy F_k(x, y)``: the map ``M_c(x, y) = sum_k w_ck * F_k(x, y)``
says how much each region adds to it. Shown scaled to [0, 1] (negative parts as 0) over
the photo, it shows which regions drove the suggestion. Pure Python: the browser and
CPython compute it the same way.
"""
from __future__ import annotations

from array import array


def head_weights(manifest: dict, params: array) -> tuple[array, int]:
    """The head's weight matrix (classes x channels, row-major) from the flat parameter
    vector, and the number of channels; raises KeyError if the bundle cannot explain."""
    name = manifest["explain"]["weight"]
    entry = next(p for p in manifest["parameters"] if p["name"] == name)
    classes, channels = entry["shape"]
    return params[entry["offset"]:entry["offset"] + classes * channels], channels


def class_activation_map(feature_map: array, shape: list[int], weights: array, cls: int) -> list[float]:
    """``M_cls`` over the H x W grid (row-major), scaled so the strongest region is 1 and
    regions that speak against the class are 0."""
    channels, height, width = shape
    cells = height * width
    row = weights[cls * channels:(cls + 1) * channels]
    scores = [0.0] * cells
    for k, w in enumerate(row):
        if w == 0.0:
            continue
        plane = feature_map[k * cells:(k + 1) * cells]
        for i in range(cells):
            scores[i] += w * plane[i]
    top = max(scores)
    if top <= 0:
        return [0.0] * cells
    return [max(0.0, s) / top for s in scores]
