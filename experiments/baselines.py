"""Baselines without federation, on the same bundle and held-out set: each client alone
("isolated") and all clients' data pooled ("centralised"). CPython, native runtime."""
from __future__ import annotations

import asyncio
import tempfile
from array import array
from pathlib import Path

import numpy as np

from export import build_bundle
from export.datasets import Dataset


def _inputs(bundle: Path, manifest: dict, images: np.ndarray) -> list[array]:
    """The same decode as every client (PNG -> Pillow), then the frozen features if any."""
    from browser_py.features import FeatureExtractor, NativeFeatures
    from browser_py.preprocess import InputSpec, pixels_pillow

    from .headless import encode_png

    spec = InputSpec.from_manifest(manifest)
    pixels = [(str(i), pixels_pillow(encode_png(im), spec)) for i, im in enumerate(images)]
    fx = (NativeFeatures(manifest, (bundle / "features.onnx").read_bytes()) if manifest["features"]
          else FeatureExtractor(manifest))
    return asyncio.run(fx.extract(pixels))


def _train_eval(bundle: Path, xs, ys, xt, yt, classes: int, epochs: int, batch: int, seed: int) -> dict:
    from browser_py.bundle_source import DirectoryBundle
    from browser_py.native.trainer import NativeTrainer
    from browser_py.trainer import LocalTrainer

    async def go():
        trainer = LocalTrainer(await NativeTrainer.create(DirectoryBundle(bundle)), batch)
        await trainer.fit(xs, ys, epochs=epochs, seed=seed)
        return await trainer.evaluate(xt, yt, classes)

    return asyncio.run(go())


def run(exp, train: Dataset, test: Dataset, parts: list[np.ndarray], log) -> dict:
    from .harness import missing_accuracy

    from server.taskconfig import defaults

    task = defaults() | exp.task  # the same defaults a task created on the server gets
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        manifest = build_bundle(task["model"], train.classes, bundle, lr=task["lr"], train_blocks=task["train_blocks"])
        xt = _inputs(bundle, manifest, test.images)
        yt = test.labels.tolist()
        batch = int(task["batch_size"])
        out: dict = {}
        if "isolated" in exp.baselines:
            out["isolated"] = []
            for i, part in enumerate(parts):
                xs = _inputs(bundle, manifest, train.images[part])
                r = _train_eval(bundle, xs, train.labels[part].tolist(), xt, yt, len(train.classes),
                                exp.baseline_epochs, batch, exp.seed)
                entry = {"client": i, "samples": len(part), "accuracy": r["accuracy"], "per_class": r["per_class"]}
                if exp.missing:
                    entry["missing"] = missing_accuracy(r["confusion"], train.classes, exp.missing[i])
                out["isolated"].append(entry)
                log(f"baseline isolated client {i}: accuracy {r['accuracy']:.3f}")
        if "centralised" in exp.baselines:
            union = np.concatenate(parts)
            xs = _inputs(bundle, manifest, train.images[union])
            r = _train_eval(bundle, xs, train.labels[union].tolist(), xt, yt, len(train.classes),
                            exp.baseline_epochs, batch, exp.seed)
            out["centralised"] = {"samples": len(union), "accuracy": r["accuracy"], "per_class": r["per_class"],
                                  "missing": [missing_accuracy(r["confusion"], train.classes, m) for m in exp.missing]}
            log(f"baseline centralised: accuracy {r['accuracy']:.3f}")
        out["epochs"] = exp.baseline_epochs
        return out
