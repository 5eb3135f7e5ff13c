"""What participants are told about a task's extensions: a title and one line each.

Read from the extension's own source (its class's ``title`` and the first line of its
module docstring) without importing it: the server never runs extension code.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

from .taskconfig import available_extensions


@lru_cache(maxsize=64)
def _read(path: Path, mtime: float) -> tuple[str, str]:
    source = path / "__init__.py" if path.is_dir() else path
    try:
        tree = ast.parse(source.read_text())
    except (OSError, SyntaxError, ValueError):
        return "", ""
    doc = (ast.get_docstring(tree) or "").strip().splitlines()
    title = ""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "title" for t in node.targets):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                title = node.value.value
                break
    return title, doc[0] if doc else ""


def describe(extensions: list[dict], directory: str | Path) -> list[dict]:
    """Each of a task's extensions with ``title`` and ``description`` added (empty when unknown)."""
    known = available_extensions(directory)
    out = []
    for ext in extensions:
        path = known.get(ext["name"])
        title, line = _read(path, path.stat().st_mtime) if path is not None else ("", "")
        out.append(ext | {"title": title or ext["name"], "description": line})
    return out
