"""The participant page's entry point in the browser (called by www/js/boot.mjs)."""
from __future__ import annotations


def _set_state(state: str, error: str | None = None) -> None:
    import js

    js.document.documentElement.dataset.webflState = state
    if error:
        js.document.documentElement.dataset.webflError = error


async def main() -> None:
    """Show the task and mark the page ready; the full participant UI grows from here."""
    import js
    from pyodide.http import pyfetch

    status = js.document.getElementById("status")
    try:
        response = await pyfetch("/api/tasks")
        tasks = (await response.json())["tasks"]
        params = js.URLSearchParams.new(js.location.search)
        wanted = params.get("task")
        task = next((t for t in tasks if t["id"] == wanted), tasks[0] if tasks else None)
        doc = js.document
        main_el = doc.getElementById("app")
        doc.getElementById("loading").hidden = True
        card = doc.createElement("section")
        card.className = "card"
        card.id = "task"
        if task is None:
            card.innerHTML = "<h1>No task yet</h1><p>Ask the organiser for a join link.</p>"
        else:
            title = doc.createElement("h1")
            title.textContent = task["title"]
            card.appendChild(title)
            note = doc.createElement("p")
            note.textContent = "Your images stay on this device. Only model parameters are sent to the server."
            card.appendChild(note)
            classes = doc.createElement("ul")
            classes.className = "classes"
            for name in task["classes"]:
                li = doc.createElement("li")
                li.textContent = name
                classes.appendChild(li)
            card.appendChild(classes)
        main_el.appendChild(card)
        threads = js.ort.env.wasm.numThreads
        status.textContent = f"Connected · compute: wasm, {threads} thread{'s' if threads != 1 else ''}"
        _set_state("ready")
    except Exception as exc:  # the page must say what went wrong, not hang
        _set_state("error", f"could not start the client: {exc}")
        raise
