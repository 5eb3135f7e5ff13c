"""A testing kit for extensions: run hooks in plain pytest, without a server or a browser.

    from browser_py.extension_testing import fake_context, make_update

    ctx = fake_context(classes=["cat", "dog"], labelled={"cat": 12, "dog": 3})
    update = make_update(change=[0.1, -0.2], samples=15)
    assert LabelBalance().metrics(ctx, update)["classes_present"] == 2.0

The context holds a real :class:`~browser_py.dataset.Dataset` (in memory) with the labelled
and unlabelled images you ask for, so hooks see the same API as in a participant's client.
"""
from __future__ import annotations

from array import array
from typing import Any, Sequence

from .dataset import Dataset, Item
from .extensions import Context, Update
from .stores import MemoryStore


def fake_dataset(classes: Sequence[str], labelled: dict[str, int] | None = None, unlabelled: int = 0,
                 test_share: int = 0) -> Dataset:
    """A dataset with ``labelled[class]`` training images per class (plus, with ``test_share``
    = n, every n-th of them held out for testing) and ``unlabelled`` unlabelled ones."""
    ds = Dataset(MemoryStore(), list(classes))
    n = 0
    for name, count in (labelled or {}).items():
        for i in range(count):
            n += 1
            split = "test" if test_share and n % test_share == 0 else "train"
            ds.items[f"{n:08x}"] = Item(f"{n:08x}", f"{name}/{i}.png", b"", name, "imported", split, added=n)
    for _ in range(unlabelled):
        n += 1
        ds.items[f"{n:08x}"] = Item(f"{n:08x}", f"new/{n}.png", b"", added=n)
    return ds


def fake_context(classes: Sequence[str] = ("a", "b"), labelled: dict[str, int] | None = None,
                 unlabelled: int = 0, participant: Any = None) -> Context:
    """What hooks receive, with a real in-memory dataset; ``participant`` may be any stand-in."""
    return Context(classes=list(classes), dataset=fake_dataset(classes, labelled, unlabelled),
                   participant=participant)


def make_update(change: Sequence[float], base: Sequence[float] | None = None, samples: int = 10,
                base_version: int = 0, metrics: dict | None = None, round: int = 0) -> Update:
    """An update whose parameters are ``base + change`` (base defaults to zeros)."""
    start = array("f", base if base is not None else [0.0] * len(change))
    params = array("f", [b + c for b, c in zip(start, change)])
    return Update(params, start, samples, base_version, dict(metrics or {}), round)
