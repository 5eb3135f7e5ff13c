"""The participant page's entry point in the browser (called by www/js/boot.mjs).

``/?join=CODE`` opens the task behind a join code: the first visit joins, later visits
(reloads) resume the same participant from IndexedDB. ``&slot=NAME`` keeps several
participants of one task apart in one browser profile (experiments with many tabs);
``&name=NAME`` is the name the admin sees (else a generated one).
"""
from __future__ import annotations

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

    js.document.documentElement.dataset.webflState = state
    if error:
        js.document.documentElement.dataset.webflError = error


async def main(page_name: str = "participant") -> None:
    """Start the page named by ``<body data-page>``: ``participant`` or ``admin``."""
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


async def participant_main() -> None:
    import js

    from .idb import IndexedDBStore
    from .participant import Participant
    from .protocol import FLClient, ServerRefused
    from .stores import MemoryStore
    from .ui.dom import by_id, el
    from .ui.participant_page import ParticipantPage, set_status

    page = globals()
    root = by_id("app")
    try:
        params = js.URLSearchParams.new(js.location.search)
        code, slot = params.get("join"), params.get("slot") or "default"
        name = params.get("name") or ""
        by_id("loading").hidden = True
        if not code:
            card = el("section", cls="card", id="task")
            card.innerHTML = JOIN_FORM
            root.appendChild(card)
            by_id("status").textContent = "Not joined"
            set_state("ready")
            return
        origin = str(js.location.origin)
        try:
            preview = await FLClient(origin, MemoryStore()).preview(code)
        except ServerRefused as exc:
            card = el("section", cls="card", id="task")
            card.appendChild(el("h1", "This join code does not work"))
            card.appendChild(el("p", f"{exc.error}. {exc.detail or ''}"))
            card.appendChild(el("a", "Enter another code", href="/"))
            root.appendChild(card)
            set_state("ready")
            return
        store = await IndexedDBStore(f"webfl:{preview['id']}:{slot}").open()
        client = FLClient(origin, store)
        if not await client.restore():
            if preview.get("extensions"):
                await confirm_extensions(root, preview)
            await client.join(code, name)
        participant = await Participant(client, store).start()
        if participant.study.needs_answer:
            await ask_study_consent(root, preview["title"], participant.study)
        await participant.load_global()
        ui = ParticipantPage(participant, root)
        await ui.load_state()
        ui.render()
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
