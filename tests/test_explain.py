"""Why this label? The exported feature map and the class activation map computed by the
client (browser_py.explain) against numpy and against the exported full model."""
from __future__ import annotations

import asyncio
from array import array

import numpy as np
import onnxruntime as ort
import pytest

from browser_py.explain import class_activation_map, head_weights
from browser_py.features import NativeFeatures
from export import build_bundle


@pytest.fixture(scope="module")
def pets_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("explain") / "pets"
    return out, build_bundle("mobilenet_v2", ["cat", "dog", "bird"], out, lr=0.01, train_blocks=0)


def test_the_bundle_carries_the_map_and_says_which_weights_explain(pets_bundle):
    out, manifest = pets_bundle
    assert manifest["features"]["map"] == {"output": "feature_map", "shape": [1280, 7, 7]}
    assert manifest["explain"] == {"weight": "0.weight", "bias": "0.bias"}
    session = ort.InferenceSession(str(out / "features.onnx"))
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 224, 224)).astype(np.float32)
    features, fmap = session.run(["features", "feature_map"], {"pixels": x})
    # the features the head trains on are exactly the map's channel means
    np.testing.assert_allclose(features, fmap.mean(axis=(2, 3)), rtol=1e-5, atol=1e-5)


def test_a_bundle_that_trains_backbone_blocks_does_not_claim_to_explain(tmp_path):
    manifest = build_bundle("mobilenet_v2", ["cat", "dog"], tmp_path / "b", lr=0.01, train_blocks=1)
    assert manifest["explain"] is None and manifest["features"]["map"] is None


def test_class_activation_map_adds_up_to_the_models_score(pets_bundle):
    """mean over the grid of M_c plus the bias is class c's logit from model.onnx: the map
    splits the very score behind the suggestion over the photo's regions."""
    out, manifest = pets_bundle
    rng = np.random.default_rng(1)
    pixels = rng.uniform(0, 255, (1, 3, 224, 224)).astype(np.float32)
    params = array("f", (out / "parameters.f32").read_bytes())
    fx = NativeFeatures(manifest, (out / "features.onnx").read_bytes())
    fmap = np.frombuffer(asyncio.run(fx.feature_map(array("f", pixels.tobytes()))), np.float32)
    weights, channels = head_weights(manifest, params)
    w = np.frombuffer(weights, np.float32).reshape(3, channels)
    bias_entry = next(p for p in manifest["parameters"] if p["name"] == "0.bias")
    bias = np.frombuffer(params, np.float32)[bias_entry["offset"]:bias_entry["offset"] + 3]
    raw = w @ fmap.reshape(channels, 49)  # classes x cells
    logits = ort.InferenceSession(str(out / "model.onnx")).run(None, {"pixels": pixels})[0][0]
    np.testing.assert_allclose(raw.mean(axis=1) + bias, logits, rtol=1e-4, atol=1e-4)
    for c in range(3):
        ours = np.asarray(class_activation_map(array("f", fmap.tobytes()), [channels, 7, 7], weights, c))
        expected = np.maximum(raw[c], 0) / raw[c].max() if raw[c].max() > 0 else np.zeros(49)
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)
        assert ours.max() in (0.0, pytest.approx(1.0)) and ours.min() >= 0


def test_a_class_nothing_speaks_for_is_an_empty_map():
    fmap = array("f", [1.0] * (2 * 2 * 2))
    assert class_activation_map(fmap, [2, 2, 2], array("f", [-1.0, -2.0]), 0) == [0.0] * 4
