"""Small DOM helpers: make elements, bind events to Python (sync or async) handlers."""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import time
from html import escape
from typing import Callable, Iterator

# Listeners are bound once per element that lives as long as the page (containers delegate
# for their changing children), so this list stays short; tests read its length.
_PROXIES: list = []


def live_proxies() -> int:
    """How many event-listener proxies this page holds (flat while a participant works)."""
    return len(_PROXIES)


def el(tag: str, text: str = "", cls: str = "", id: str = "", **attrs):
    import js

    node = js.document.createElement(tag)
    if text:
        node.textContent = text
    if cls:
        node.className = cls
    if id:
        node.id = id
    for key, value in attrs.items():
        node.setAttribute(key.rstrip("_").replace("_", "-"), str(value))
    return node


def markup(tag: str, text: str = "", cls: str = "", id: str = "", children: tuple[str, ...] = (), **attrs) -> str:
    """The HTML of what :func:`el` would build (text and attributes escaped), with child markup:
    many elements made as one string cost one call into the browser instead of dozens each."""
    names = ([("class", cls)] if cls else []) + ([("id", id)] if id else []) + [
        (key.rstrip("_").replace("_", "-"), value) for key, value in attrs.items() if value is not None]
    opening = "".join(f' {name}="{escape(str(value))}"' if value != "" else f" {name}"
                      for name, value in names)
    return f"<{tag}{opening}>{escape(text)}{''.join(children)}</{tag}>"


def from_markup(html: str):
    """Elements from :func:`markup` HTML, as a DocumentFragment ready to insert."""
    import js

    template = js.document.createElement("template")
    template.innerHTML = html
    return template.content


def present(node) -> bool:
    """False for None and for JS null/undefined (Pyodide keeps JS null distinct from None)."""
    from pyodide.ffi import jsnull

    return node is not None and node is not jsnull


def by_id(id: str):
    """The element, or None (JS null is not Python None in Pyodide)."""
    import js
    from pyodide.ffi import jsnull

    node = js.document.getElementById(id)
    return None if node is None or node is jsnull else node


def clear(node) -> None:
    while node.firstChild:
        node.removeChild(node.firstChild)


def on(node, event: str, handler: Callable, prevent_default: bool = False) -> None:
    """Call ``handler(event)``; coroutines run as tasks, errors are shown, not swallowed.

    An async handler runs after the event has been dispatched, so it cannot stop the
    browser's default action (a form submitting): ask for ``prevent_default`` instead.
    """
    from pyodide.ffi import create_proxy

    def fire(evt):
        if prevent_default:
            evt.preventDefault()
        result = handler(evt)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            task.add_done_callback(_report)

    proxy = create_proxy(fire)
    _PROXIES.append(proxy)
    node.addEventListener(event, proxy)


def when_idle(callback: Callable[[], object], timeout_ms: int = 2000) -> None:
    """Run ``callback`` once the browser has nothing else to do (at the latest after
    ``timeout_ms``): work done ahead so that a click later finds it done."""
    import js
    from pyodide.ffi import create_once_callable

    from ..jsvalues import js_object

    once = create_once_callable(lambda *deadline: callback())  # released after its call
    if hasattr(js, "requestIdleCallback"):
        js.requestIdleCallback(once, js_object({"timeout": timeout_ms}))
    else:  # Safari
        js.setTimeout(once, 0)


# the browser's errors a participant can cause, in their words (the rest are shown as they come)
PLAIN_REASONS = {
    "NotFoundError": "a file was moved or deleted while it was being read",
    "NotReadableError": "a file changed or could not be read",
    "QuotaExceededError": "this device has no room left for more",
}


def plain_reason(exc: BaseException) -> str:
    """An error as a participant is told it: the browser's known ones in plain words, else
    its first line, cut short (the console keeps the whole)."""
    reason = (str(exc) or type(exc).__name__).splitlines()[0].rstrip(". ")
    reason = PLAIN_REASONS.get(reason.split(":")[0], reason)
    return reason if len(reason) <= 160 else reason[:159] + "…"


def _report(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        import js

        exc = task.exception()
        js.console.error(f"webfl: {type(exc).__name__}: {exc}")
        box = by_id("toast")
        if box is not None:
            box.textContent = f"Something went wrong: {plain_reason(exc)}."
            box.hidden = False


@contextlib.contextmanager
def says_if_it_stops(node, words: Callable[[str], str]) -> Iterator[None]:
    """An action that stops on an unexpected error says so on its own line, ``words(reason)``,
    instead of leaving its last progress there ("Reading 1 file…" read as work still going
    on); the error still goes on to the console and the toast."""
    try:
        yield
    except Exception as exc:
        if present(node):
            node.textContent = words(plain_reason(exc))
        raise


class Countdown:
    """A line that counts whole seconds down, ``words(seconds_left)``, until it reaches zero
    or is stopped (it owns its task: starting again replaces the count)."""

    def __init__(self, node) -> None:
        self.node = node
        self._task: asyncio.Future | None = None

    def start(self, seconds: float, words: Callable[[int], str]) -> None:
        self.stop()
        self._task = asyncio.ensure_future(self._count(time.monotonic() + seconds, words))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _count(self, end: float, words: Callable[[int], str]) -> None:
        while (left := end - time.monotonic()) > 0:
            self.node.textContent = words(math.ceil(left))
            await asyncio.sleep(left - math.ceil(left) + 1)  # to the next whole second


def object_url(data: bytes, mime: str = "") -> str:
    import js
    from pyodide.ffi import to_js

    from ..jsvalues import js_object, uint8array

    return js.URL.createObjectURL(js.Blob.new(to_js([uint8array(data)]), js_object({"type": mime})))


def forget_object_url(url: str) -> None:
    """Let the browser free what ``object_url`` made (other URLs, e.g. data: ones, need nothing)."""
    if url.startswith("blob:"):
        import js

        js.URL.revokeObjectURL(url)


# The browser reads a download from its blob URL after the click returns (and may ask where
# to save it first): the URL, and the bytes it holds, are given back this long after.
DOWNLOAD_URL_SECONDS = 60.0


def download(name: str, data: bytes, mime: str = "application/zip") -> None:
    """Save ``data`` as the file ``name`` (typed ``mime``) through the browser's downloads."""
    import js

    url = object_url(data, mime)
    link = el("a", href=url, download=name)
    js.document.body.appendChild(link)
    link.click()
    link.remove()
    asyncio.get_event_loop().call_later(DOWNLOAD_URL_SECONDS, forget_object_url, url)
