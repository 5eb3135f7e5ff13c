"""Python values handed to JavaScript, converted one way everywhere (Pyodide only).

Every byte buffer and option object the client gives to the browser or onnxruntime-web
goes through these two functions, so conversions cannot drift between modules.
"""
from __future__ import annotations

from typing import Any


def uint8array(data: bytes) -> Any:
    """A new JS ``Uint8Array`` holding a copy of ``data``."""
    import js

    buf = js.Uint8Array.new(len(data))
    buf.assign(data)
    return buf


def js_object(value: Any) -> Any:
    """``value`` with Python dicts turned into plain JS objects (not Maps), recursively."""
    import js
    from pyodide.ffi import to_js

    return to_js(value, dict_converter=js.Object.fromEntries)
