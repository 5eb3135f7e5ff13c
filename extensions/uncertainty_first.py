"""Uncertainty-first review: the images the model is least sure about come first.

Active-learning style ordering (Settles, "Active Learning Literature Survey", 2009):
by ``margin`` (top-1 minus top-2 probability) or ``entropy``. The panel has a toggle to
switch the ordering off again.

Task config: ``{"name": "uncertainty_first", "params": {"by": "margin"}}``.
"""
from __future__ import annotations

from browser_py.extensions import Context, Extension, register
from browser_py.labeling import entropy, margin


@register
class UncertaintyFirst(Extension):
    name = "uncertainty_first"
    title = "Review the least certain images first"

    def __init__(self, by: str = "margin", enabled: bool = True) -> None:
        super().__init__(by=by, enabled=enabled)
        if by not in ("margin", "entropy"):
            raise ValueError("uncertainty_first: by must be margin or entropy")
        self.by = by
        self.enabled = enabled
        self.uncertainty: dict[str, float] = {}

    def review_order(self, ctx: Context, ids, probs):
        key = (lambda p: margin(p)) if self.by == "margin" else (lambda p: -entropy(p))
        self.uncertainty = {i: key(p) for i, p in zip(ids, probs)}
        if not self.enabled:
            return None
        return sorted(ids, key=self.uncertainty.__getitem__)

    def panel(self, ctx: Context):
        import js
        from pyodide.ffi import create_proxy

        box = js.document.createElement("label")
        box.id = "uncertainty-panel"
        toggle = js.document.createElement("input")
        toggle.type = "checkbox"
        toggle.id = "uncertainty-toggle"
        toggle.checked = self.enabled
        box.appendChild(toggle)
        box.appendChild(js.document.createTextNode(f" Show the least certain suggestions first (by {self.by})"))

        def changed(event):
            self.enabled = bool(toggle.checked)
            if ctx.refresh is not None:
                ctx.refresh()

        self._proxy = create_proxy(changed)  # lives as long as the page
        toggle.addEventListener("change", self._proxy)
        return box
