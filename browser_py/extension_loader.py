"""Fetch, install and start the extensions a task names; keep hooks from breaking the client.

The wheel is downloaded from the server and imported from a zip on ``sys.path``, the
same way in the browser and in CPython (a pure-Python wheel is an importable zip). Either way the module
registers its :class:`~browser_py.extensions.Extension` and we create it with the task's
parameters. Failures become readable messages, never a dead client.
"""
from __future__ import annotations

import importlib
import sys
import tempfile
import traceback
from pathlib import Path

from .extensions import Context, Extension, ExtensionError, registered


async def _install(url: str, client) -> None:
    wheel = (await client.call("GET", url)).body
    path = Path(tempfile.mkdtemp(prefix="webfl-ext-")) / url.rsplit("/", 1)[-1]
    path.write_bytes(wheel)
    sys.path.insert(0, str(path))
    importlib.invalidate_caches()


class Problems(list):
    """What went wrong with extensions: plain messages (a list of str, shown to people),
    each with its traceback one step away in :attr:`tracebacks`."""

    def __init__(self) -> None:
        super().__init__()
        self.tracebacks: dict[str, str] = {}

    def add(self, message: str, exc: BaseException) -> None:
        self.append(message)
        self.tracebacks[message] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


async def load(specs: list[dict], client) -> tuple[list[Extension], Problems]:
    """Start every extension in ``specs``; returns the running ones and what went wrong."""
    running, errors = [], Problems()
    for spec in specs:
        name = spec["name"]
        try:
            if name not in registered():
                for dependency in spec.get("requires", []):  # vendored pure-Python wheels, first
                    await _install(dependency, client)
                await _install(spec["url"], client)
                importlib.import_module(name)
            cls = registered().get(name)
            if cls is None:
                raise ExtensionError(f"module {name} did not register an extension called {name!r}")
            running.append(cls(**spec.get("params", {})))
        except Exception as exc:  # an extension must never take the client down
            errors.add(f"extension {name} could not be loaded: {type(exc).__name__}: {exc}", exc)
    return running, errors


class Hooks:
    """Calls a hook on every running extension; one that raises is reported and switched off."""

    def __init__(self, extensions: list[Extension], context: Context, errors: list[str] | Problems) -> None:
        self.extensions = list(extensions)
        self.context = context
        self.errors = errors

    def pipe(self, hook: str, value, spread: bool = False):
        """Run ``hook`` on each extension in turn, each receiving the previous one's result
        (``spread``: the value is a tuple of arguments). Extensions run in the task's declared
        order, except that those marked ``runs_last`` (privacy transforms) run after all
        others, so nothing later can undo them. Returns ``(result, None)``, or
        ``(None, extension)`` when a hook returned None (it vetoed)."""
        ordered = sorted(self.extensions, key=lambda e: bool(getattr(e, "runs_last", False)))
        for ext in ordered:
            try:
                out = getattr(ext, hook)(self.context, *(value if spread else (value,)))
            except Exception as exc:
                self._switch_off(ext, hook, exc)
                continue
            if out is None:
                return None, ext
            value = out
        return value, None

    def _switch_off(self, ext: Extension, hook: str, exc: Exception) -> None:
        self.extensions.remove(ext)
        message = f"extension {ext.name} failed in {hook} and was switched off: {type(exc).__name__}: {exc}"
        if isinstance(self.errors, Problems):
            self.errors.add(message, exc)
        else:
            self.errors.append(message)

    def call(self, hook: str, *args):
        """Yield (extension, result) for each extension whose hook ran without raising
        (for hooks whose results are combined, not chained: suggest, review_order, metrics)."""
        for ext in list(self.extensions):
            try:
                yield ext, getattr(ext, hook)(self.context, *args)
            except Exception as exc:
                self._switch_off(ext, hook, exc)
