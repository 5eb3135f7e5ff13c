"""The webfl participant client, in pure Python.

It runs in the browser under Pyodide and in CPython for headless clients and tests.
Only small adapters know where they run: ``ort_web`` (onnxruntime-web via JS interop)
and ``native.trainer`` (onnxruntime-training in CPython) behind one trainer interface, and
``bundle_source`` for fetching bundle files.
"""
from .runtime import IN_PYODIDE

__all__ = ["IN_PYODIDE"]
