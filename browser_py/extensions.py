"""Extending the client in Python: the public API.

An extension is a class derived from :class:`Extension`, registered with :func:`register`
in a module of its own. A task names its extensions (``config.extensions``); the server
serves each module as a wheel, and the client (in the browser and in CPython alike) puts
the wheel on ``sys.path`` and imports it and creates the extension with the task's parameters.

Hooks (override the ones you need; the defaults do nothing):

- :meth:`Extension.augment` — change or add training samples before a local round. It gets
  copies of the head's inputs (float32, the layout of ``manifest["head"]["input_shape"]``:
  C x H x W pixels in 0..255 for a model that trains everything, the feature vector for a
  frozen backbone) and their labels; the update still counts the labelled images only;
- :meth:`Extension.suggest` — the label suggested for an image, from the model's probabilities;
- :meth:`Extension.review_order` — which unlabelled images the participant reviews first;
- :meth:`Extension.before_send` — transform the update, or return None to keep it home;
- :meth:`Extension.metrics` — extra numbers reported to the server with the update;
- :meth:`Extension.panel` — an extra panel on the participant page (browser only).

``augment`` and ``before_send`` form a pipeline in the task's declared order: each extension
receives the previous one's result. Extensions with ``runs_last = True`` (privacy transforms
such as local DP) run after all others in the pipeline, so no later extension can send the
raw change. For ``suggest`` and ``review_order`` the last extension with an answer wins;
``metrics`` are merged.

A hook that raises is reported and that extension is switched off for the session; the
client carries on without it.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = ["Extension", "ExtensionError", "Update", "register", "registered", "Context"]

_REGISTRY: dict[str, type["Extension"]] = {}


class ExtensionError(RuntimeError):
    """An extension could not be loaded or failed; the message names it."""


@dataclass
class Update:
    """The update about to be sent: new local parameters and where they started from."""

    params: array
    base: array
    samples: int
    base_version: int
    metrics: dict = field(default_factory=dict)
    round: int = 0  # how many updates this participant sent before, in this session


@dataclass
class Context:
    """What hooks may look at: the task's classes, the participant's dataset and the
    controller itself (``participant``) for anything else."""

    classes: list[str]
    dataset: Any
    participant: Any
    refresh: Any = None  # call to redraw the participant page after changing data (browser)


class Extension:
    """Base class. ``params`` come from the task config; ``name`` is the registry name."""

    name = ""
    title = ""
    runs_last = False  # True for privacy transforms: they run after every other extension

    def __init__(self, **params: Any) -> None:
        self.params = params

    def augment(self, ctx: Context, xs: list[array], ys: list[int]) -> tuple[list[array], list[int]]:
        """Return the training inputs and labels to use this round (add, drop or change samples).

        ``xs`` are copies (changing them in place is safe), one float32 array per sample in the
        head's input layout; ``ys`` are class indices. Runs before every local round, chained
        with the other extensions' ``augment`` in the task's order."""
        return xs, ys

    def suggest(self, ctx: Context, item_id: str, probs: Sequence[float]) -> tuple[str, float] | None:
        """Return (label, confidence), or None to keep the default (the most likely class)."""
        return None

    def review_order(self, ctx: Context, ids: list[str], probs: list[Sequence[float]]) -> list[str] | None:
        """Return the ids in the order to review them, or None to keep the default."""
        return None

    def before_send(self, ctx: Context, update: Update) -> Update | None:
        """Return the update to send (changed or not), or None to keep it on the device this
        round. Chained in the task's order; ``runs_last`` extensions come after the others."""
        return update

    def metrics(self, ctx: Context, update: Update) -> dict[str, float]:
        """Numbers to report with the update (merged over extensions). Names are short
        lower-case identifiers (a-z, digits, ``_`` and ``.``, at most 32 characters), values
        finite; the server refuses an update with more than 32 or with other names."""
        return {}

    def panel(self, ctx: Context):
        """Return a DOM element for the participant page (browser only), or None."""
        return None


def register(cls: type[Extension]) -> type[Extension]:
    """Class decorator: make the extension available under ``cls.name``."""
    if not cls.name:
        raise ExtensionError(f"{cls.__name__} needs a name")
    _REGISTRY[cls.name] = cls
    return cls


def registered() -> dict[str, type[Extension]]:
    return dict(_REGISTRY)
