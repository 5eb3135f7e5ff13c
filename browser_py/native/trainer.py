"""Training backend for CPython: onnxruntime-training's native API.

The same artifacts and the same baked learning rate as the browser, so the same data
in the same order gives the same losses (within float tolerance).
"""
from __future__ import annotations

import os
import tempfile
from array import array
from typing import Sequence

import numpy as np

from ..bundle_source import BundleSource
from ..trainer import TrainerError, check_batch, check_samples


class NativeTrainer:
    name = "onnxruntime-training (CPython)"

    def __init__(self, manifest: dict, module, optimizer, workdir: tempfile.TemporaryDirectory) -> None:
        self.manifest = manifest
        self.input_shape = list(manifest["head"]["input_shape"])
        self.num_parameters = int(manifest["num_parameters"])
        self._module = module
        self._optimizer = optimizer
        self._workdir = workdir  # keeps the artifact files alive as long as the sessions

    @classmethod
    async def create(cls, source: BundleSource, threads: int | None = None) -> "NativeTrainer":
        """``threads``: onnxruntime's intra-op threads (None: its default, one per core)."""
        import onnxruntime
        from onnxruntime.training.api import CheckpointState, Module, Optimizer

        manifest = await source.load_manifest()
        workdir = tempfile.TemporaryDirectory(prefix="webfl-native-")
        for name in ("training_model.onnx", "eval_model.onnx", "optimizer_model.onnx", "checkpoint"):
            with open(os.path.join(workdir.name, name), "wb") as f:
                f.write(await source.read(name))
        path = lambda n: os.path.join(workdir.name, n)  # noqa: E731
        state = CheckpointState.load_checkpoint(path("checkpoint"))
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        module = Module(path("training_model.onnx"), state, path("eval_model.onnx"), device="cpu",
                        session_options=options)
        optimizer = Optimizer(path("optimizer_model.onnx"), module)
        return cls(manifest, module, optimizer, workdir)

    def _feeds(self, inputs: array, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        n = check_batch(self, inputs, labels)
        x = np.frombuffer(inputs, dtype=np.float32).reshape([n, *self.input_shape])
        return x, np.asarray(labels, dtype=np.int64)

    async def train_step(self, inputs: array, labels: Sequence[int]) -> float:
        return self._step(*self._feeds(inputs, labels))

    def _step(self, x: np.ndarray, y: np.ndarray) -> float:
        self._module.train()
        loss, _ = self._module(x, y)
        self._optimizer.step()
        self._module.lazy_reset_grad()
        return float(loss)

    def samples(self, xs: Sequence[array], ys: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        check_samples(self, xs, ys)
        x = np.stack([np.frombuffer(v, dtype=np.float32) for v in xs]).reshape([len(xs), *self.input_shape])
        return x, np.asarray(ys, dtype=np.int64)

    async def train_steps(self, samples: tuple[np.ndarray, np.ndarray], batches: Sequence[Sequence[int]]) -> list[float]:
        x, y = samples
        return [self._step(x[list(part)], y[list(part)]) for part in batches]

    async def eval_step(self, inputs: array, labels: Sequence[int]) -> tuple[float, array]:
        x, y = self._feeds(inputs, labels)
        self._module.eval()
        loss, logits = self._module(x, y)
        return float(loss), array("f", np.ascontiguousarray(logits, dtype=np.float32).tobytes())

    async def get_parameters(self) -> array:
        values = self._module.get_contiguous_parameters(trainable_only=True).numpy()
        return array("f", values.astype(np.float32).tobytes())

    async def set_parameters(self, params: array) -> None:
        if len(params) != self.num_parameters:
            raise TrainerError(f"expected {self.num_parameters} parameters, got {len(params)}")
        from onnxruntime import OrtValue

        value = OrtValue.ortvalue_from_numpy(np.frombuffer(params, dtype=np.float32).copy())
        # The 1.19 wrapper forwards its own OrtValue to the C++ binding, which wants the inner one.
        self._module.copy_buffer_to_parameters(value._ortvalue, trainable_only=True)
