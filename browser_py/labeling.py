"""Label suggestions from the current model, and which images to review first."""
from __future__ import annotations

import math
from typing import Sequence


def margin(probs: Sequence[float]) -> float:
    """Top-1 minus top-2 probability: small means the model hesitates between two classes."""
    top = sorted(probs, reverse=True)
    return top[0] - (top[1] if len(top) > 1 else 0.0)


def entropy(probs: Sequence[float]) -> float:
    return -sum(p * math.log(p) for p in probs if p > 0)


def suggestion(probs: Sequence[float], classes: Sequence[str]) -> tuple[str, float]:
    best = max(range(len(probs)), key=probs.__getitem__)
    return classes[best], float(probs[best])


ORDERINGS = {
    "confidence": lambda probs: -max(probs),   # most confident first (quick accepting)
    "margin": margin,                            # least certain first
    "entropy": lambda probs: -entropy(probs),    # most uncertain first
}


def review_order(ids: Sequence[str], probs: Sequence[Sequence[float]], by: str = "margin") -> list[str]:
    """Ids sorted for review; ``by`` is a key of :data:`ORDERINGS` (ascending key = first)."""
    key = ORDERINGS[by]
    return [i for _, i in sorted(zip((key(p) for p in probs), ids), key=lambda t: t[0])]
