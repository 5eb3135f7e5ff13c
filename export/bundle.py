"""Build a model bundle: manifest.json + ONNX files + ORT training artifacts.

Layout of a bundle directory (every file's sha256 is in the manifest):

- ``features.onnx``: the frozen feature extractor, inference only (absent when all trains);
  with a second output, the spatial map it averages, when the manifest has ``explain``;
- ``training_model.onnx``, ``eval_model.onnx``, ``optimizer_model.onnx``, ``checkpoint``:
  the trainable head as onnxruntime training artifacts;
- ``model.onnx``: features and head in one inference graph, for export and evaluation;
- ``parameters.f32``: the head's initial trainable parameters as one little-endian float32
  vector, in the manifest's ``parameters`` order (the vector that travels in FL).

The web build of onnxruntime trains with a fixed learning rate of 0.001, so the task's
rate is baked into ``optimizer_model.onnx`` as a constant factor ``lr / 0.001`` that
multiplies the learning-rate input: every runtime then steps with the task's rate.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from .models import MODELS, ModelSpec, get_model

FORMAT = "webfl-bundle/1"
RUNTIME_LR = 0.001  # what onnxruntime-web's training build feeds as learning_rate
ORT_MAX_IR_VERSION = 10  # onnxruntime 1.19 refuses newer IR versions
OPSET = 17
ARTIFACTS = ("training_model.onnx", "eval_model.onnx", "optimizer_model.onnx", "checkpoint")


class BundleError(ValueError):
    """A bundle cannot be built from these arguments (the message says why, in one line)."""


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the hundreds of C++ log lines generate_artifacts writes to fd 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def validate_args(model: str, classes: Sequence[str], lr: float, train_blocks: int) -> tuple[ModelSpec, list[str]]:
    """Check everything before any work starts; return the model spec and clean class names."""
    try:
        spec = get_model(model)
    except KeyError as exc:
        raise BundleError(exc.args[0]) from None
    names = [c.strip() for c in classes]
    if len(names) < 2:
        raise BundleError("a classifier needs at least two class names")
    if any(not c for c in names):
        raise BundleError("class names must not be empty")
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise BundleError(f"duplicate class names: {', '.join(dup)}")
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise BundleError(f"learning rate must be a positive number, got {lr}")
    if not 0 <= train_blocks <= spec.max_train_blocks:
        raise BundleError(
            f"--train-blocks {train_blocks} is outside 0..{spec.max_train_blocks} for {spec.name}")
    return spec, names


def _export(module: torch.nn.Module, example: torch.Tensor, in_name: str, out_name: str | list[str],
            training: bool) -> onnx.ModelProto:
    outputs = [out_name] if isinstance(out_name, str) else list(out_name)
    buf = io.BytesIO()
    mode = torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.EVAL
    with _quiet_stderr(), torch.no_grad() if not training else contextlib.nullcontext():
        torch.onnx.export(
            module, (example,), buf, input_names=[in_name], output_names=outputs,
            dynamic_axes={name: {0: "batch"} for name in (in_name, *outputs)},
            opset_version=OPSET, do_constant_folding=not training, training=mode, dynamo=False)
    return onnx.load_from_string(buf.getvalue())


class _FeaturesAndMap(torch.nn.Module):
    """The feature extractor with a second output, the spatial map it averages (for class
    activation maps); a caller asks for the outputs it needs, so training pays nothing."""

    def __init__(self, spatial: torch.nn.Module) -> None:
        super().__init__()
        self.spatial = spatial

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.spatial(x)
        return torch.flatten(torch.nn.functional.adaptive_avg_pool2d(fmap, 1), 1), fmap


def _scale_learning_rate(path: Path, lr: float) -> None:
    """Make the optimizer step with ``lr`` although the runtime feeds ``RUNTIME_LR``."""
    model = onnx.load(str(path))
    graph = model.graph
    factor = numpy_helper.from_array(np.array([lr / RUNTIME_LR], dtype=np.float32), "webfl_lr_factor")
    graph.initializer.append(factor)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == "learning_rate":
                node.input[i] = "webfl_scaled_learning_rate"
    graph.node.insert(0, helper.make_node(
        "Mul", ["learning_rate", "webfl_lr_factor"], ["webfl_scaled_learning_rate"], name="webfl_lr_scale"))
    onnx.save(model, str(path))


def _fix_ir_version(path: Path) -> None:
    model = onnx.load(str(path))
    if model.ir_version > ORT_MAX_IR_VERSION:
        model.ir_version = ORT_MAX_IR_VERSION
        onnx.save(model, str(path))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_artifacts(head: torch.nn.Module, feature_shape: list[int], out: Path) -> list[dict]:
    """Training artifacts for the head; returns the trainable-parameter layout."""
    from onnxruntime.training import artifacts

    example = torch.zeros(2, *feature_shape)
    model = _export(head.train(), example, "input", "output", training=True)
    trainable = [n for n, p in head.named_parameters() if p.requires_grad]
    with _quiet_stderr():
        artifacts.generate_artifacts(
            model, requires_grad=trainable, frozen_params=[],
            loss=artifacts.LossType.CrossEntropyLoss, optimizer=artifacts.OptimType.AdamW,
            artifact_directory=str(out), additional_output_names=["output"])
    for name in ARTIFACTS[:3]:
        _fix_ir_version(out / name)
    # The flat vector follows the training graph's parameter inputs, in order.
    graph_inputs = [i.name for i in onnx.load(str(out / "training_model.onnx")).graph.input]
    shapes = {n: list(p.shape) for n, p in head.named_parameters()}
    layout, offset = [], 0
    for name in (n for n in graph_inputs if n in shapes):
        size = int(np.prod(shapes[name])) if shapes[name] else 1
        layout.append({"name": name, "shape": shapes[name], "offset": offset, "size": size})
        offset += size
    return layout


def _initial_parameters(out: Path) -> np.ndarray:
    """Load the artifacts in CPython onnxruntime (validating them) and read the vector."""
    from onnxruntime.training.api import CheckpointState, Module

    with _quiet_stderr():
        state = CheckpointState.load_checkpoint(str(out / "checkpoint"))
        module = Module(str(out / "training_model.onnx"), state, str(out / "eval_model.onnx"))
        return module.get_contiguous_parameters(trainable_only=True).numpy().astype("<f4")


def _prepare_output(out: Path, overwrite: bool) -> Path:
    out = out.resolve()
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise BundleError(f"{out} already exists and is not empty (use --force to replace it)")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    except OSError as exc:
        raise BundleError(f"cannot write to {parent}: {exc.strerror}") from None


# torch.onnx.export keeps global state: two exports at once in one process fail
# ("GLOBALS.in_onnx_export must be False"), so builds in a process take turns.
_EXPORT_LOCK = threading.Lock()


def build_bundle(model: str, classes: Sequence[str], out: Path | str, lr: float = 0.001,
                 train_blocks: int = 0, overwrite: bool = False) -> dict:
    """Build a bundle at ``out`` and return its manifest (one build at a time per process)."""
    with _EXPORT_LOCK:
        return _build_bundle(model, classes, out, lr, train_blocks, overwrite)


def _build_bundle(model: str, classes: Sequence[str], out: Path | str, lr: float,
                  train_blocks: int, overwrite: bool) -> dict:
    """Build a bundle at ``out`` and return its manifest.

    The bundle is built in a temporary sibling directory and renamed into place at the
    end, so a failure at any point leaves no partial bundle behind.
    """
    spec, names = validate_args(model, classes, lr, train_blocks)
    out = Path(out)
    tmp = _prepare_output(out, overwrite)
    started = time.perf_counter()
    try:
        torch.manual_seed(0)  # the same arguments always give the same initial parameters
        split = spec.split(len(names), train_blocks)
        pre = spec.preprocessing
        pixels = torch.rand(2, *pre.input_shape) * 255
        files = []
        feature_map = None
        if split.spatial is not None:
            onnx.save(_export(_FeaturesAndMap(split.spatial).eval(), pixels, "pixels", ["features", "feature_map"],
                              training=False), str(tmp / "features.onnx"))
            with torch.no_grad():
                feature_map = {"output": "feature_map", "shape": list(split.spatial(pixels[:1]).shape[1:])}
            files.append("features.onnx")
        elif split.features is not None:
            onnx.save(_export(split.features, pixels, "pixels", "features", training=False), str(tmp / "features.onnx"))
            files.append("features.onnx")
        full = torch.nn.Sequential(*(m for m in (split.features, split.head) if m is not None)).eval()
        onnx.save(_export(full, pixels, "pixels", "logits", training=False), str(tmp / "model.onnx"))
        layout = _make_artifacts(split.head, split.feature_shape, tmp)
        _scale_learning_rate(tmp / "optimizer_model.onnx", lr)
        params = _initial_parameters(tmp)
        total = sum(p["size"] for p in layout)
        if params.size != total:
            raise BundleError(f"internal: layout covers {total} values but the checkpoint has {params.size}")
        (tmp / "parameters.f32").write_bytes(params.tobytes())
        files += ["model.onnx", *ARTIFACTS, "parameters.f32"]
        manifest = {
            "format": FORMAT,
            "model": spec.name,
            "description": spec.description,
            "source_weights": spec.source_weights,
            "classes": names,
            "input": pre.to_manifest() | {"shape": pre.input_shape, "name": "pixels"},
            "features": ({"file": "features.onnx", "input": "pixels", "output": "features",
                          "shape": split.feature_shape, "map": feature_map} if split.features is not None else None),
            # class activation maps: the head's weight and bias (names in "parameters") over the map
            "explain": split.explain if feature_map is not None else None,
            "head": {"input": "input", "output": "output", "input_shape": split.feature_shape,
                     "labels": "labels", "label_dtype": "int64"},
            "model_file": {"file": "model.onnx", "input": "pixels", "output": "logits"},
            "training": {"lr": float(lr), "runtime_lr": RUNTIME_LR, "optimizer": "adamw",
                         "loss": "cross_entropy", "train_blocks": train_blocks},
            "num_parameters": total,
            "parameters": layout,
            "initial_parameters": "parameters.f32",
            "files": {f: {"sha256": _sha256(tmp / f), "bytes": (tmp / f).stat().st_size} for f in files},
            "build_seconds": round(time.perf_counter() - started, 2),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        _swap_into_place(tmp, out.resolve())
        return manifest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_manifest(bundle_dir: Path | str, verify: bool = False) -> dict:
    """Read a bundle's manifest; with ``verify`` check every file's sha256."""
    bundle_dir = Path(bundle_dir)
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{bundle_dir} is not a {FORMAT} bundle")
    if verify:
        for name, meta in manifest["files"].items():
            if _sha256(bundle_dir / name) != meta["sha256"]:
                raise BundleError(f"{bundle_dir / name} does not match its sha256 in the manifest")
    return manifest


__all__ = ["BundleError", "FORMAT", "MODELS", "build_bundle", "load_manifest", "validate_args"]
