"""The participant page's entry point in the browser (called by www/js/boot.mjs)."""
from __future__ import annotations

from .runtime import IN_PYODIDE

JOIN_FORM = """
<h1>Join a task</h1>
<p>Enter the join code from your link or QR code.</p>
<form method="get" action="/" class="join">
  <label for="join-code">Join code</label>
  <input id="join-code" name="join" autocomplete="off" required>
  <button type="submit">Continue</button>
</form>
"""


def set_state(state: str, error: str | None = None) -> None:
    """The documented page state: ``loading`` -> ``ready`` | ``error``."""
    import js

    js.document.documentElement.dataset.webflState = state
    if error:
        js.document.documentElement.dataset.webflError = error


def _element(tag: str, text: str = "", cls: str = "", id: str = ""):
    import js

    el = js.document.createElement(tag)
    if text:
        el.textContent = text
    if cls:
        el.className = cls
    if id:
        el.id = id
    return el


async def main() -> None:
    """Show the task behind ``?join=CODE`` (or a join form) and mark the page ready."""
    import js
    from pyodide.http import pyfetch

    assert IN_PYODIDE
    doc = js.document
    status = doc.getElementById("status")
    try:
        code = js.URLSearchParams.new(js.location.search).get("join")
        card = _element("section", cls="card", id="task")
        if not code:
            card.innerHTML = JOIN_FORM
        else:
            response = await pyfetch(f"/api/join/{js.encodeURIComponent(code)}")
            info = await response.json()
            if not response.ok:
                card.appendChild(_element("h1", "This join code does not work"))
                card.appendChild(_element("p", f"{info['error']}. {info.get('detail') or ''}"))
            else:
                card.appendChild(_element("h1", info["title"]))
                card.appendChild(_element(
                    "p", "Your images stay on this device. Only model parameters are sent to the server."))
                classes = _element("ul", cls="classes")
                for name in info["classes"]:
                    classes.appendChild(_element("li", name))
                card.appendChild(classes)
        doc.getElementById("loading").hidden = True
        doc.getElementById("app").appendChild(card)
        threads = js.ort.env.wasm.numThreads
        status.textContent = f"Compute: wasm, {threads} thread{'s' if threads != 1 else ''}"
        set_state("ready")
    except Exception as exc:  # the page must say what went wrong, not hang
        set_state("error", f"could not start the client: {exc}")
        raise
