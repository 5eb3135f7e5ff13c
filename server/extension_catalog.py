"""What the server knows about an extension, read from its source without running it.

- participants are told its title (the class's ``title``) and one line (the module
  docstring's first line);
- its parameters are its ``__init__`` signature: names, types (float, int, bool, str,
  optionally ``| None``) and defaults. Task configs are checked against them, and the
  admin form offers them.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

from .taskconfig import available_extensions


KINDS = {"float": "number", "int": "int", "bool": "bool", "str": "text"}


def _tree(path: Path) -> ast.Module | None:
    source = path / "__init__.py" if path.is_dir() else path
    try:
        return ast.parse(source.read_text())
    except (OSError, SyntaxError, ValueError):
        return None


@lru_cache(maxsize=64)
def _parameters(path: Path, mtime: float) -> tuple[tuple[str, str, object, bool], ...] | None:
    """(name, kind, default, may be None) per ``__init__`` parameter of the extension class,
    or None when the source declares none we can read."""
    tree = _tree(path)
    if tree is None:
        return None
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        init = next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
        if init is None:
            continue
        args = init.args.args[1:] + init.args.kwonlyargs
        defaults = [None] * (len(init.args.args[1:]) - len(init.args.defaults)) + list(init.args.defaults) \
            + list(init.args.kw_defaults)
        out = []
        for arg, default in zip(args, defaults):
            names = {n.id for n in ast.walk(arg.annotation) if isinstance(n, ast.Name)} if arg.annotation else set()
            optional = "None" in ast.unparse(arg.annotation) if arg.annotation else False
            kind = next((KINDS[n] for n in ("bool", "int", "float", "str") if n in names), "any")
            try:
                value = ast.literal_eval(default) if default is not None else None
            except ValueError:
                value = None
            out.append((arg.arg, kind, value, optional))
        return tuple(out)
    return None


def parameters(path: Path) -> list[dict]:
    """The extension's parameters for forms: ``{name, kind, default, optional}``."""
    found = _parameters(path, path.stat().st_mtime) or ()
    return [{"name": n, "kind": k, "default": d, "optional": o} for n, k, d, o in found]


def check_parameters(name: str, path: Path, given: dict) -> str | None:
    """None if ``given`` fits the extension's ``__init__``; otherwise what is wrong."""
    declared = {p["name"]: p for p in parameters(path)}
    if not declared and _parameters(path, path.stat().st_mtime) is None:
        return None  # nothing readable to check against
    for key, value in given.items():
        if key not in declared:
            takes = ", ".join(declared) or "no parameters"
            return f"extension {name} has no parameter {key!r} (it takes {takes})"
        p = declared[key]
        if value is None:
            if not p["optional"]:
                return f"extension {name}: {key} cannot be empty"
            continue
        ok = {"number": isinstance(value, (int, float)) and not isinstance(value, bool),
              "int": isinstance(value, int) and not isinstance(value, bool),
              "bool": isinstance(value, bool), "text": isinstance(value, str), "any": True}[p["kind"]]
        if not ok:
            return f"extension {name}: {key} must be {p['kind'].replace('text', 'a string')}, got {value!r}"
    return None


def requires(path: Path) -> list[str]:
    """The PyPI names an extension declares in a module-level ``REQUIRES = [...]``."""
    tree = _tree(path)
    for node in tree.body if tree is not None else []:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "REQUIRES" for t in node.targets):
            try:
                names = ast.literal_eval(node.value)
            except ValueError:
                return []
            return [str(n) for n in names]
    return []


def dependency_urls(path: Path) -> list[str]:
    """Where the page and CPython clients fetch the extension's dependencies (vendored wheels)."""
    from .vendor import EXTENSION_DEPENDENCIES

    return [f"/vendor/{next(iter(EXTENSION_DEPENDENCIES[n].files.values()))}"
            for n in requires(path) if n in EXTENSION_DEPENDENCIES]


def missing_dependencies(path: Path) -> list[str]:
    from .vendor import EXTENSION_DEPENDENCIES

    return [n for n in requires(path) if n not in EXTENSION_DEPENDENCIES]


def catalog(directory: str | Path) -> list[dict]:
    """Every available extension with its title, description and parameters (the admin form)."""
    out = []
    for name, path in sorted(available_extensions(directory).items()):
        title, line = _read(path, path.stat().st_mtime)
        out.append({"name": name, "title": title or name, "description": line, "params": parameters(path)})
    return out


@lru_cache(maxsize=64)
def _read(path: Path, mtime: float) -> tuple[str, str]:
    tree = _tree(path)
    if tree is None:
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
        out.append(ext | {"title": title or ext["name"], "description": line,
                          "requires": dependency_urls(path) if path is not None else []})
    return out
