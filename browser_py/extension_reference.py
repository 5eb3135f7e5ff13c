"""The extension API reference, generated from the docstrings and type hints of
:mod:`browser_py.extensions` (``docs/extension-api.md`` is its output; a test keeps the two
equal). Regenerate with ``python -m browser_py.extension_reference > docs/extension-api.md``.
"""
from __future__ import annotations

import dataclasses
import inspect

from . import extension_testing, extensions

HOOK_ORDER = ("augment", "suggest", "review_order", "before_send", "metrics", "panel")


def _doc(obj) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip()


def _signature(fn) -> str:
    return str(inspect.signature(fn)).replace("'", "")


def render() -> str:
    lines = ["# Extension API reference", "",
             "Generated from `browser_py/extensions.py` and `browser_py/extension_testing.py` "
             "(`python -m browser_py.extension_reference`). The guide is `docs/extensions.md`.", "",
             _doc(extensions), ""]
    lines += ["## Hooks of `Extension`", "", _doc(extensions.Extension), ""]
    lines += [f"Class attributes: `name` (what a task names; equal to the module's file name), `title` "
              f"(shown to participants), `runs_last = {extensions.Extension.runs_last}` "
              "(privacy transforms run after every other extension).", ""]
    for n, hook in enumerate(HOOK_ORDER, 1):
        fn = getattr(extensions.Extension, hook)
        lines += [f"### {n}. `{hook}{_signature(fn)}`", "", _doc(fn) or "(no further notes)", ""]
    for cls in (extensions.Update, extensions.Context):
        lines += [f"## `{cls.__name__}`", "", _doc(cls), "", "| field | type |", "|---|---|"]
        lines += [f"| `{f.name}` | `{f.type}` |" for f in dataclasses.fields(cls)]
        lines.append("")
    lines += ["## What `ctx.dataset` offers", "",
              "A `browser_py.dataset.Dataset`: `items` (id -> `Item` with `label`, `source`, `split`, "
              "`suggestion`, `confidence`), `labelled(split)`, `unlabelled()`, `counts()`. "
              "`ctx.participant` is the client itself (`browser_py.participant.Participant`).", ""]
    lines += ["## Testing kit (`browser_py.extension_testing`)", "", _doc(extension_testing), ""]
    for fn in (extension_testing.fake_context, extension_testing.make_update, extension_testing.fake_dataset):
        lines += [f"- `{fn.__name__}{_signature(fn)}`: {_doc(fn)}"]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
