"""A task's global model as files people can use elsewhere: ONNX, or a PyTorch state_dict.

The network is rebuilt from the zoo exactly as the bundle was (same seed, same split),
the head's parameters are loaded from the flat vector by the manifest's names, and the
result is exported. The frozen feature extractor comes along, so both files hold the
whole model: pixels in [0, 255] -> logits.
"""
from __future__ import annotations

import io

import numpy as np
import torch

from .bundle import OPSET, _export
from .models import get_model


def rebuild(manifest: dict, params: np.ndarray) -> torch.nn.Module:
    """The bundle's model in PyTorch with the given trainable parameters."""
    torch.manual_seed(0)
    split = get_model(manifest["model"]).split(len(manifest["classes"]), manifest["training"]["train_blocks"])
    flat = torch.tensor(np.asarray(params, dtype=np.float32))  # a copy: the stored vector may be read-only
    state = split.head.state_dict()
    for p in manifest["parameters"]:
        state[p["name"]] = flat[p["offset"]:p["offset"] + p["size"]].reshape(p["shape"]).clone()
    split.head.load_state_dict(state)
    parts = [m for m in (split.features, split.head) if m is not None]
    return torch.nn.Sequential(*parts).eval()


def to_onnx(manifest: dict, params: np.ndarray) -> bytes:
    model = rebuild(manifest, params)
    pixels = torch.rand(2, *manifest["input"]["shape"]) * 255
    proto = _export(model, pixels, "pixels", "logits", training=False)
    proto.doc_string = f"webfl {manifest['model']}; classes: {', '.join(manifest['classes'])}; opset {OPSET}"
    return proto.SerializeToString()


def to_state_dict(manifest: dict, params: np.ndarray) -> bytes:
    """``torch.save`` of {"state_dict", "model", "classes", "input", "train_blocks"}."""
    model = rebuild(manifest, params)
    buf = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "model": manifest["model"], "classes": manifest["classes"],
                "input": manifest["input"], "train_blocks": manifest["training"]["train_blocks"],
                "note": "load into export.download.rebuild(manifest, params) or the zoo's split model"}, buf)
    return buf.getvalue()
