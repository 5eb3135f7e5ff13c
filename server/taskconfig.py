"""A task's configuration: defaults, validation and which fields need a new bundle.

Validation errors name the field and say what is allowed, so the admin UI and API can
show them as they are.
"""
from __future__ import annotations

import math
from pathlib import Path

from export import BundleError
from export.bundle import validate_args

from .errors import APIError
from .strategies import make_strategy

DEFAULTS: dict = {
    "model": "digits_cnn",
    "train_blocks": 0,
    "lr": 0.003,
    "batch_size": 32,
    "local_epochs": 1,
    "min_labelled": 10,
    "max_staleness": 50,
    "max_update_norm": None,     # refuse updates whose change is larger than this (L2)
    "keep_versions": 200,        # parameter files of older versions are deleted
    "aggregator": {"name": "fedasync", "alpha": 0.6, "staleness": "polynomial"},
    "extensions": [],            # client extensions: [{"name": ..., "params": {...}}]
}

# Changing any of these changes the bundle (and with it the parameter layout).
BUNDLE_FIELDS = ("model", "classes", "lr", "train_blocks")

_INT_RANGES = {
    "batch_size": (1, 4096), "local_epochs": (1, 1000), "min_labelled": (1, 10**6),
    "max_staleness": (0, 10**6), "keep_versions": (1, 10**6), "train_blocks": (0, 10**3),
}


class ConfigError(APIError):
    status = 400


def available_extensions(directory: str | Path) -> dict[str, Path]:
    """Extension name -> its module file or package directory."""
    root = Path(directory)
    if not root.is_dir():
        return {}
    found = {p.stem: p for p in root.glob("*.py") if not p.name.startswith("_")}
    found |= {p.name: p for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    return found


def _check_extensions(value, directory: str | Path | None) -> list[dict]:
    if not isinstance(value, list):
        raise ConfigError("config.extensions must be a list like [{\"name\": \"local_dp\", \"params\": {}}]")
    known = available_extensions(directory) if directory is not None else None
    out = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError("each extension needs a name: {\"name\": ..., \"params\": {...}}")
        params = entry.get("params", {})
        if not isinstance(params, dict):
            raise ConfigError(f"config.extensions: params of {entry['name']} must be an object")
        if known is not None and entry["name"] not in known:
            raise ConfigError(f"unknown extension {entry['name']!r}", {"available": sorted(known)})
        out.append({"name": entry["name"], "params": params})
    return out


def validate(config: dict, base: dict | None = None, extensions_dir: str | Path | None = None) -> dict:
    """Merge ``config`` over ``base`` (or the defaults) and check every field."""
    if not isinstance(config, dict):
        raise ConfigError("task config must be a JSON object")
    unknown = sorted(set(config) - set(DEFAULTS) - {"classes"})
    if unknown:
        raise ConfigError(f"unknown config field(s): {', '.join(unknown)}",
                          {"allowed": sorted([*DEFAULTS, "classes"])})
    merged = dict(base or DEFAULTS) | config
    if "classes" not in merged:
        raise ConfigError("config.classes is required: a list of class names")
    if not isinstance(merged["classes"], list) or not all(isinstance(c, str) for c in merged["classes"]):
        raise ConfigError("config.classes must be a list of strings")
    for name, (lo, hi) in _INT_RANGES.items():
        value = merged[name]
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise ConfigError(f"config.{name} must be a whole number from {lo} to {hi}, got {value!r}")
    if not isinstance(merged["lr"], (int, float)) or isinstance(merged["lr"], bool):
        raise ConfigError(f"config.lr must be a number, got {merged['lr']!r}")
    norm = merged["max_update_norm"]
    if norm is not None and (not isinstance(norm, (int, float)) or not math.isfinite(norm) or norm <= 0):
        raise ConfigError(f"config.max_update_norm must be a positive number or null, got {norm!r}")
    if merged["keep_versions"] <= merged["max_staleness"]:
        raise ConfigError("config.keep_versions must exceed config.max_staleness "
                          "(a stale update needs the version it started from)")
    try:
        merged["classes"] = validate_args(merged["model"], merged["classes"], merged["lr"],
                                          merged["train_blocks"])[1]
    except BundleError as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(merged["aggregator"], dict):
        raise ConfigError("config.aggregator must be an object like {\"name\": \"fedasync\", ...}")
    try:
        make_strategy(merged["aggregator"])
    except ValueError as exc:
        raise ConfigError(f"config.aggregator: {exc}") from None
    merged["extensions"] = _check_extensions(merged.get("extensions", []), extensions_dir)
    return merged


def needs_new_bundle(old: dict, new: dict) -> bool:
    return any(old.get(f) != new.get(f) for f in BUNDLE_FIELDS)
