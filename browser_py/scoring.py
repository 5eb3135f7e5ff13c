"""How a model is scored on labelled images, defined once: the participant's local test,
the server's validation of each global version and the experiments' reports all use
:class:`Scores`, so "accuracy" means the same thing on every side. Pure Python (it runs in
the browser too)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence


@dataclass
class Scores:
    """A confusion matrix [true][predicted] and the summed loss, filled batch by batch."""

    num_classes: int
    confusion: list[list[int]] = field(default_factory=list)
    loss_sum: float = 0.0
    samples: int = 0

    def __post_init__(self) -> None:
        if not self.confusion:
            self.confusion = [[0] * self.num_classes for _ in range(self.num_classes)]

    def add(self, labels: Sequence[int], logits: Sequence[float], mean_loss: float) -> None:
        """One batch: its labels, its logits (row-major, ``num_classes`` per sample) and mean loss."""
        k = self.num_classes
        for j, y in enumerate(labels):
            row = logits[j * k:(j + 1) * k]
            self.confusion[int(y)][max(range(k), key=row.__getitem__)] += 1
        self.loss_sum += float(mean_loss) * len(labels)
        self.samples += len(labels)

    def summary(self) -> dict:
        """accuracy, loss (mean), per_class (None for classes without samples), confusion, samples."""
        n = max(1, self.samples)
        k = self.num_classes
        correct = sum(self.confusion[i][i] for i in range(k))
        per_class = [self.confusion[i][i] / sum(self.confusion[i]) if sum(self.confusion[i]) else None
                     for i in range(k)]
        return {"accuracy": correct / n, "loss": self.loss_sum / n, "per_class": per_class,
                "confusion": self.confusion, "samples": self.samples}
