"""The interface every training backend implements, and what they share.

Inputs travel as flat ``array('f')`` in the head's input layout (batch first), labels
as lists of ints, parameters as one flat ``array('f')`` in the manifest's order.
All methods are ``async`` because the browser backend awaits onnxruntime-web.
"""
from __future__ import annotations

from array import array
from typing import Protocol, Sequence


class TrainingBackend(Protocol):
    name: str
    num_parameters: int
    input_shape: list[int]  # one sample, at the head's input

    async def train_step(self, inputs: array, labels: Sequence[int]) -> float:
        """One forward/backward pass and one optimizer step; returns the batch loss."""

    async def eval_step(self, inputs: array, labels: Sequence[int]) -> tuple[float, array]:
        """Loss and logits (flat, batch x classes) without changing anything."""

    async def get_parameters(self) -> array: ...

    async def set_parameters(self, params: array) -> None: ...


class TrainerError(RuntimeError):
    """Training could not run (bad shapes, a runtime failure), with a readable message."""


def check_batch(backend: TrainingBackend, inputs: array, labels: Sequence[int]) -> int:
    """Validate a batch against the head's input shape; return its size."""
    per_sample = 1
    for d in backend.input_shape:
        per_sample *= d
    n = len(labels)
    if n == 0 or len(inputs) != n * per_sample:
        raise TrainerError(
            f"a batch of {n} labels needs {n * per_sample} input values, got {len(inputs)}")
    return n
