"""webfl server: tasks, bundles, aggregation and the participant's pages (CPython only)."""
from __future__ import annotations

from typing import Any


def create_app(test_config: dict | None = None) -> Any:
    """Build the Flask app (imported lazily so ``python -m server.vendor`` needs no Flask)."""
    from .app import create_app as _create_app

    return _create_app(test_config)


__all__ = ["create_app"]
