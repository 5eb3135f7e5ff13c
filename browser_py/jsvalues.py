"""Python values handed to JavaScript, converted one way everywhere (Pyodide only).

Every buffer and option object the client gives to the browser or onnxruntime-web goes
through these functions, so conversions cannot drift between modules.
"""
from __future__ import annotations

from array import array
from typing import Any


def _typed(kind: str, values) -> Any:
    import js

    buf = getattr(js, kind).new(len(values))
    buf.assign(values)
    return buf


def uint8array(data: bytes) -> Any:
    """A new JS ``Uint8Array`` holding a copy of ``data``."""
    return _typed("Uint8Array", data)


def float32array(values: array) -> Any:
    """A new JS ``Float32Array`` holding a copy of an ``array('f')``."""
    return _typed("Float32Array", values)


def int32array(values: array) -> Any:
    """A new JS ``Int32Array`` holding a copy of an ``array('i')``."""
    return _typed("Int32Array", values)


def bigint64array(values: array) -> Any:
    """A new JS ``BigInt64Array`` holding a copy of an ``array('q')`` (onnxruntime's int64)."""
    return _typed("BigInt64Array", values)


def js_object(value: Any) -> Any:
    """``value`` with Python dicts turned into plain JS objects (not Maps), recursively."""
    import js
    from pyodide.ffi import to_js

    return to_js(value, dict_converter=js.Object.fromEntries)
