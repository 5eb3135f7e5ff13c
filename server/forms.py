"""The admin's task form, derived from the declarations that validate it.

Each field of :class:`~server.taskconfig.TaskConfig` and of every strategy's ``Params``
becomes ``{name, label, kind, default, help, min, max, choices}``: the form shows the
same bounds, defaults and explanations the server enforces, and nothing is kept twice.
"""
from __future__ import annotations

import typing
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .strategies import STRATEGIES
from .taskconfig import TaskConfig

# TaskConfig fields the form shows as plain inputs (classes, model, aggregator and
# extensions have their own controls).
SETTINGS_IN_FORM = ("lr", "batch_size", "local_epochs", "min_labelled", "max_staleness", "keep_versions",
                    "max_samples", "max_change_ratio", "max_change_vs_recent", "direction_guard", "max_update_norm", "max_updates_per_minute",
                    "update_encoding", "user_study", "study_notice")


def _bounds(info: FieldInfo) -> dict:
    out: dict[str, Any] = {}
    for meta in info.metadata:
        for attr, key in (("ge", "min"), ("gt", "min"), ("le", "max"), ("lt", "max")):
            value = getattr(meta, attr, None)
            if value is not None:
                out[key] = value
                if attr in ("gt", "lt"):
                    out[f"{key}_exclusive"] = True
    return out


def field(name: str, info: FieldInfo) -> dict | None:
    """One form field, or None for nested settings the form leaves at their defaults."""
    annotation = info.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = len(args) < len(typing.get_args(annotation))
    base = args[0] if optional and len(args) == 1 else annotation
    entry: dict[str, Any] = {"name": name, "label": info.title or name.replace("_", " ").capitalize(),
                             "help": info.description or "", "optional": optional}
    if typing.get_origin(base) is Literal:
        entry |= {"kind": "choice", "choices": list(typing.get_args(base))}
    elif base is bool:
        entry["kind"] = "bool"
    elif base is int:
        entry["kind"] = "int"
    elif base is float:
        entry["kind"] = "number"
    elif base is str:
        longest = max((getattr(m, "max_length", None) or 0 for m in info.metadata), default=0)
        entry["kind"] = "longtext" if longest > 200 else "text"
    else:
        return None
    entry["default"] = None if info.is_required() else info.get_default(call_default_factory=True)
    return entry | _bounds(info)


def fields(model: type[BaseModel], only: tuple[str, ...] | None = None, skip: tuple[str, ...] = ()) -> list[dict]:
    names = only or tuple(model.model_fields)
    out = [field(n, model.model_fields[n]) for n in names if n not in skip]
    return [f for f in out if f is not None]


def task_settings() -> list[dict]:
    return fields(TaskConfig, SETTINGS_IN_FORM)


def aggregators() -> list[dict]:
    """What the admin's task form shows for each strategy."""
    return [{"name": cls.name, "paper": cls.paper, "summary": cls.summary,
             "params": fields(cls.Params, skip=("name", "clip_norm")) + fields(cls.Params, only=("clip_norm",))}
            for cls in STRATEGIES.values()]
