"""The participant page's entry point in the browser (called by www/js/boot.mjs).

``/?join=CODE`` opens the task behind a join code: the first visit joins, later visits
(reloads) resume the same participant from IndexedDB. ``&slot=NAME`` keeps several
participants of one task apart in one browser profile (experiments with many tabs);
``&name=NAME`` is the name the admin sees (else a generated one). ``/?task=ID`` reopens a
task this browser joined before (``browser_py.joined``), with no join code: the page links
a participant's tasks this way, each with its own photos.
"""
from __future__ import annotations

from typing import Callable

from .runtime import fresh_process_state, mark

# How long the page keeps retrying a request before it says there is no connection (an
# unsent update then waits in the outbox; the page keeps trying in the background).
PAGE_RETRY_SECONDS = 30.0
# Joining waits longer: the server limits joins per network address per minute, and a class
# behind one address can meet that limit. One told wait (at most the limit's 60 s window)
# fits in the page's start-up limit (START_TIMEOUT_MS in www/js/boot.mjs: 90 s).
JOIN_PATIENCE_SECONDS = 65.0

JOIN_FORM = """
<h1>Join a task</h1>
<p>Enter the join code from your link or QR code.</p>
<form method="get" action="/" class="join">
  <label for="join-code">Join code</label>
  <input id="join-code" name="join" autocomplete="off" required>
  <label for="join-name">Your name for the organiser (optional)</label>
  <input id="join-name" name="name" autocomplete="nickname" maxlength="80">
  <button type="submit" class="primary">Continue</button>
</form>
"""


def set_state(state: str, error: str | None = None) -> None:
    """The documented page state: ``loading`` -> ``ready`` | ``error``."""
    import js

    mark(state)
    js.document.documentElement.dataset.webflState = state
    if error:
        js.document.documentElement.dataset.webflError = error


async def main(page_name: str = "participant") -> None:
    """Start the page named by ``<body data-page>``: ``participant`` or ``admin``."""
    fresh_process_state()
    if page_name == "admin":
        from .ui import admin_page

        try:
            await admin_page.main()
            set_state("ready")
        except Exception as exc:
            set_state("error", f"could not start the admin page: {exc}")
            raise
        return
    await participant_main()


async def confirm_extensions(root, preview: dict) -> None:
    """Before joining a task that runs extensions: say which, and join only on a click."""
    import asyncio

    from .ui.dom import el, on
    from .ui.participant_page import extensions_notice

    card = el("section", cls="card", id="join-confirm")
    card.appendChild(el("h1", preview["title"]))
    card.appendChild(extensions_notice(preview["extensions"]))
    button = el("button", "Join this task", type="button", cls="primary", id="join-confirm-button")
    card.appendChild(button)
    root.appendChild(card)
    clicked = asyncio.get_event_loop().create_future()
    on(button, "click", lambda e: clicked.done() or clicked.set_result(True))
    set_state("ready")  # the page waits for the participant
    await clicked
    set_state("loading")
    card.remove()


async def ask_study_consent(root, title: str, study) -> None:
    """A user study: the notice first; the participant takes part either way."""
    import asyncio

    from .ui.dom import el, on

    card = el("section", cls="card", id="study-consent")
    card.appendChild(el("h1", title))
    card.appendChild(el("h2", "This task is part of a study"))
    card.appendChild(el("p", study.notice, cls="study-notice-text"))
    yes = el("button", "Yes, record what I do", type="button", cls="primary", id="study-agree")
    no = el("button", "Take part without recording", type="button", id="study-decline")
    row = el("p", cls="actions")
    row.appendChild(yes)
    row.appendChild(no)
    card.appendChild(row)
    root.appendChild(card)
    from .ui.dom import by_id

    by_id("status").textContent = "Waiting for your answer"
    answered = asyncio.get_event_loop().create_future()
    on(yes, "click", lambda e: answered.done() or answered.set_result(True))
    on(no, "click", lambda e: answered.done() or answered.set_result(False))
    set_state("ready")  # the page waits for the participant
    agreed = await answered
    set_state("loading")
    await study.answer(agreed)
    card.remove()


async def join_when_let_in(client, code: str, name: str) -> None:
    """Join; when the server asks to wait (many joins from one network in a minute, say a
    class behind one address), wait as long as it says, counting down in the status line."""
    from .protocol import ServerBusy
    from .ui.dom import Countdown, by_id
    from .ui.participant_page import retry_words

    countdown = Countdown(by_id("status"))

    def words(why: Exception) -> Callable[[int], str]:
        if isinstance(why, ServerBusy):
            return lambda left: f"Many people are joining from this network: joining in {left} s…"
        return lambda left: retry_words(left, why)

    try:
        await client.join(code, name, on_retry=lambda seconds, why: countdown.start(seconds, words(why)),
                          patience=JOIN_PATIENCE_SECONDS)
    finally:
        countdown.stop()


def show_problem(root, title: str, text: str) -> None:
    """A dead end in plain words, with the way back to the join form."""
    from .ui.dom import el

    card = el("section", cls="card", id="task")
    card.appendChild(el("h1", title))
    card.appendChild(el("p", text))
    card.appendChild(el("a", "Enter a join code", href="/"))
    root.appendChild(card)
    set_state("ready")


def joined_tasks_list(tasks: list[dict], title: str):
    """Links to the tasks this browser joined (each keeps its own photos)."""
    from . import joined
    from .ui.dom import el

    box = el("nav", cls="my-tasks", id="my-tasks", aria_label="Your tasks")
    if not tasks:
        return box
    box.appendChild(el("h2", title))
    items = el("ul")
    for t in tasks:
        item = el("li")
        item.appendChild(el("a", t["title"], href=joined.link(t)))
        items.appendChild(item)
    box.appendChild(items)
    return box


async def participant_main() -> None:
    import asyncio

    import js

    from .idb import IndexedDBStore
    from .participant import Participant
    from .protocol import FLClient, ServerRefused
    from .stores import MemoryStore
    from .ui.dom import by_id, el
    from .ui.participant_page import ParticipantPage, set_status

    from . import joined

    page = globals()
    root = by_id("app")
    try:
        params = js.URLSearchParams.new(js.location.search)
        code, task_id = params.get("join"), params.get("task")
        slot, name = params.get("slot") or "default", params.get("name") or ""
        by_id("loading").hidden = True
        if not code and not task_id:
            card = el("section", cls="card", id="task")
            card.innerHTML = JOIN_FORM
            card.appendChild(joined_tasks_list(joined.joined(), "Or continue a task you joined"))
            root.appendChild(card)
            by_id("status").textContent = "Not joined"
            set_state("ready")
            return
        origin = str(js.location.origin)
        known = joined.find(task_id=task_id, slot=slot) if task_id else joined.find(code=code, slot=slot)
        if task_id:  # a task this browser joined before: no join code needed
            if known is None:
                return show_problem(root, "This browser has not joined that task",
                                    "Open the join link or QR code you were given.")
            preview = {"id": known["id"], "title": known["title"], "extensions": []}
        else:
            try:
                preview = await FLClient(origin, MemoryStore(), retry_seconds=PAGE_RETRY_SECONDS).preview(code)
            except ServerRefused as exc:
                return show_problem(root, "This join code does not work", f"{exc.error}. {exc.detail or ''}")
            except Exception:  # no connection: a task joined before still opens from this device
                if known is None:
                    raise
                preview = {"id": known["id"], "title": known["title"], "extensions": []}
        store = await IndexedDBStore(f"webfl:{preview['id']}:{slot}").open()
        client = FLClient(origin, store, retry_seconds=PAGE_RETRY_SECONDS)
        if not await client.restore():
            if not code:
                return show_problem(root, "This browser has not joined that task",
                                    "Open the join link or QR code you were given.")
            if preview.get("extensions"):
                await confirm_extensions(root, preview)
            await join_when_let_in(client, code, name)
        # the global model comes while the training engine starts (its answer is read after)
        pulling = asyncio.ensure_future(client.pull())
        try:
            # an update left unsent is tried once: offline, trying for the page's patience held
            # the start that long (the page keeps sending it in the background)
            participant = await Participant(client, store).start(retry_unsent=False)
        except BaseException:
            pulling.cancel()
            raise
        if participant.study.needs_answer:
            await ask_study_consent(root, preview["title"], participant.study)
        await participant.load_global(pulling)
        joined.remember(participant.task["id"], participant.task["title"], slot,
                        code or (known or {}).get("code"))
        ui = ParticipantPage(participant, root)
        await ui.load_state()
        ui.render(others=[t for t in joined.joined() if (t["id"], t.get("slot")) != (participant.task["id"], slot)])
        set_status(participant)
        page["participant"], page["ui"] = participant, ui  # for the console and tests
        set_state("ready")
    except Exception as exc:  # the page must say what went wrong, not hang
        set_state("error", f"could not start the client: {exc}")
        box = by_id("error")
        if box is not None:
            by_id("error-message").textContent = str(exc)
            box.hidden = False
        raise
