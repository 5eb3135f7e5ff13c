"""The participant page: four steps (add photos, check labels, train, test), the next one
always in view.

The step bar on top says where the participant is; the action bar at the bottom of the
screen names the one thing to do next (``browser_py.guide``) and, while training runs,
shows its progress and the cancel button. Tiles keep their place during a review pass
(a label changes a tile, it does not move it); a deleted photo leaves an undo in its
place. What a participant would be sorry to lose on a reload (the last round's outcome,
the test results, the review position) is kept in the store.
"""
from __future__ import annotations

import asyncio
import base64
import math
import time

from ..dataset import Item
from ..guide import STEP_TITLES, STEPS, Situation, Step, next_step
from ..participant import NotEnoughData, Participant, RoundResult
from ..protocol import ServerBusy, ServerRefused, ServerUnavailable
from ..runtime import long_work
from ..trainer import Cancelled, CancelToken, Progress
from .dom import (Countdown, by_id, clear, download, el, forget_object_url, from_markup, markup, object_url, on,
                  plain_reason, present, says_if_it_stops, when_idle)

FILTERS = {"all": "All photos", "unlabelled": "Without a label", "suggested": "With a suggestion",
           "labelled": "Labelled"}
PAGE_STATE = "page"  # store meta key: last round, test results, review position
# the error chart redraws at most this often during a round (a redraw took 4-8 ms here, and a
# later round of a head on 60 photos ~0.1 s): a quick round draws only its result
CHART_REDRAW_SECONDS = 0.25
# the last round's error curve is kept with its outcome (a reload shows both) up to this many
# points (a float each; 5 passes over 2,000 photos in batches of 32 make 315)
KEPT_LOSS_POINTS = 5000
MAX_TILES = 300
# after an import that stopped (a Stop, an error): how to add what it left out
ADD_THE_REST = "Choose the files again to add the rest (images already here are skipped)."


class ParticipantPage:
    def __init__(self, participant: Participant, root) -> None:
        self.p = participant
        self.root = root
        self.cancel: CancelToken | None = None
        self.suggesting: CancelToken | None = None  # while suggestions are made: the Stop button's
        self.importing: CancelToken | None = None  # while images are added (by one or more imports)
        self._imports = 0
        self.filter = "all"
        self.order: list[str] = []  # the review pass: tiles shown, in a fixed order
        self.current: str | None = None  # the tile keyboard focus returns to
        self._thumbs: dict[str, str] = {}
        self._options: dict[str | None, tuple[str, ...]] = {}  # label -> its tiles' label menu
        self._drawn: list[tuple[str, tuple]] = []  # (item id, look) of the tiles drawn, in order
        self._drawn_more = 0
        self._rest = None  # the task drawing the rest of a long grid, if it is still at work
        self._deleted: dict[str, Item] = {}  # deleted during this pass: undo brings them back
        self.loss_chart = None
        self.kept_losses: list[float] = []  # the last round's curve, kept from before a reload
        self.saved: dict = {}
        # the last write of ``saved``, held: the event loop keeps only weak references to tasks
        self._state_written: asyncio.Future | None = None
        self.step: Step | None = None
        # why an update waits on this device: "" (none waits), "offline" (no connection) or
        # "busy" (the server asked to wait); the outbox sends it when the server takes it
        self.unsent = ""

    @property
    def ds(self):
        return self.p.dataset

    # --- layout -------------------------------------------------------------------------
    async def load_state(self) -> None:
        """What the page kept from before a reload."""
        saved = await self.p.store.get_meta(PAGE_STATE)
        self.saved = saved if isinstance(saved, dict) else {}
        if self.saved.get("filter") in FILTERS or str(self.saved.get("filter", "")).startswith("class:"):
            self.filter = self.saved["filter"]
        self.current = self.saved.get("focus")

    def _save_state(self, **changes) -> None:
        """Keep what the page shows (filter, focus, the last round's words) for after a
        reload, without making anyone wait: writes go in order, and a reload moments after
        one loses only that change."""
        self.saved.update(changes)
        self._state_written = asyncio.ensure_future(self._write_state(dict(self.saved)))

    async def _write_state(self, state: dict) -> None:
        try:
            await self.p.store.set_metas({PAGE_STATE: state}, durable=False)
        except Exception as exc:  # the page goes on; the layout is what a reload would miss
            print(f"page state not kept: {exc}")

    def render(self, others: list[dict] | None = None) -> None:
        """Build the page; ``others`` are the other tasks this browser joined (a switcher)."""
        task = self.p.task
        head = el("section", cls="card", id="task")
        head.appendChild(el("h1", task["title"]))
        head.appendChild(el("p", "Your photos stay on this device. Only what the model learns from them is sent.",
                            cls="privacy"))
        if task.get("extensions"):
            head.appendChild(extensions_notice(task["extensions"]))
        if self.p.study.enabled:
            head.appendChild(self._study_line())
        chips = el("ul", cls="classes", aria_label="Classes")
        for n, name in enumerate(self.p.classes):
            chip = el("li", name)
            if n < 9 and len(name) > 1:  # a one-character class name is its own key
                chip.appendChild(el("kbd", str(n + 1), title=f"key {n + 1} labels a photo {name}"))
            chips.appendChild(chip)
        head.appendChild(chips)
        head.appendChild(self._name_line())
        if others:
            from ..app import joined_tasks_list

            head.appendChild(joined_tasks_list(others, "Your other tasks"))
        self.root.appendChild(head)
        guide = el("div", cls="guide", id="guide")  # sticky: always on screen
        guide.appendChild(self._steps_nav())
        guide.appendChild(self._action_bar())
        self.root.appendChild(guide)
        self.root.appendChild(self._add_section())
        self.root.appendChild(self._review_section())
        self.root.appendChild(self._train_section())
        self.root.appendChild(self._test_section())
        self.root.appendChild(self._data_section())
        if self.p.can_explain:
            self.root.appendChild(self._why_dialog())
        extras = self._extensions_section()
        if extras is not None:
            self.root.insertBefore(extras, by_id("add"))
        self._show_saved_results()
        when_idle(self._show_kept_losses)
        if self.p.start_notice:
            by_id("train-result").textContent = self.p.start_notice
        self.new_pass()
        # photos kept from an earlier visit may lack features (the tab was closed first, or the
        # task's feature extractor changed): the model looks at them while the participant does
        self.p.prepare_in_background(self._show_preparing)
        asyncio.ensure_future(self._watch_connection())
        if self.current and self.current in self.ds.items:
            self._focus(self.current, scroll=True)

    def _name_line(self):
        """The name the organiser sees, changeable in place."""
        box = el("form", cls="name-line", id="name-form")
        box.appendChild(el("label", "Your name for the organiser (optional)", for_="display-name"))
        field = el("input", id="display-name", value=self.p.client.membership.name, maxlength="80",
                   autocomplete="nickname")
        save = el("button", "Save name", type="submit", id="save-name")
        note = el("span", "", id="name-message", cls="message", aria_live="polite")
        for node in (field, save, note):
            box.appendChild(node)

        async def submit(event) -> None:
            try:
                kept = await self.p.client.rename(str(field.value))
            except ServerRefused as exc:
                note.textContent = f"Not saved: {exc.error}"
                return
            except Exception:
                note.textContent = "Not saved: no connection. Try again later."
                return
            field.value = kept
            note.textContent = f"Saved: the organiser sees you as {kept}."

        on(box, "submit", submit, prevent_default=True)
        return box

    def _steps_nav(self):
        nav = el("nav", cls="steps", id="steps", aria_label="Steps")
        items = el("ol")
        for n, key in enumerate(STEPS, 1):
            item = el("li")
            item.setAttribute("data-step", key)
            link = el("span", id=f"step-{key}")
            link.appendChild(el("span", str(n), cls="step-number"))
            link.appendChild(el("span", STEP_TITLES[key], cls="step-title"))
            item.appendChild(link)
            items.appendChild(item)
        nav.appendChild(items)
        return nav

    def _action_bar(self):
        """Always on screen: the next step's hint and main button; progress while training."""
        bar = el("div", cls="action-bar", id="next")
        bar.appendChild(el("p", "", id="next-hint", aria_live="polite"))
        row = el("div", cls="row")
        go = el("button", "", id="next-action", cls="primary", type="button")
        progress = el("progress", id="train-progress", max="1", value="0", hidden="",
                      aria_label="Training progress")
        stop = el("button", "Cancel training", id="cancel", type="button", hidden="")
        for node in (go, progress, stop):
            row.appendChild(node)
        bar.appendChild(row)
        on(go, "click", self.do_next)
        on(stop, "click", lambda e: self.cancel and self.cancel.cancel())
        return bar

    def _why_dialog(self):
        """"Why this label?": the photo with the regions that drove the model highlighted."""
        box = el("dialog", cls="why", id="why", aria_labelledby="why-title")
        box.appendChild(el("h2", "Why this label?", id="why-title"))
        box.appendChild(el("canvas", id="why-canvas", width="240", height="240", role="img",
                           aria_label="The photo, with the regions that drove the suggestion in warm colours"))
        box.appendChild(el("p", "", id="why-text", aria_live="polite"))
        close = el("button", "Close", type="button", id="why-close")
        box.appendChild(close)
        on(close, "click", lambda e: box.close())
        return box

    async def show_why(self, item_id: str) -> None:
        """Open the "why this label?" dialog for one photo (class activation map)."""
        import js
        from pyodide.ffi import to_js

        from ..jsvalues import uint8array

        item = self.ds.get(item_id)
        box, canvas, words = by_id("why"), by_id("why-canvas"), by_id("why-text")
        words.textContent = "Working it out…"
        if not box.open:
            box.showModal()
        result = await self.p.explain(item)
        if result is None:
            words.textContent = "This photo has no label or suggestion to explain yet."
            return
        size = int(canvas.width)
        ctx = canvas.getContext("2d")
        bitmap = await js.createImageBitmap(js.Blob.new(to_js([uint8array(item.data)])))
        ctx.drawImage(bitmap, 0, 0, size, size)  # as the model sees it: the whole photo, square
        bitmap.close()
        heat = js.document.createElement("canvas")
        heat.width, heat.height = result["width"], result["height"]
        rgba = []
        for v in result["grid"]:  # yellow (a little) to red (most), transparent where nothing
            rgba += [255, int(220 * (1 - v)), 0, int(190 * v)]
        heat.getContext("2d").putImageData(
            js.ImageData.new(js.Uint8ClampedArray.new(to_js(rgba)), result["width"], result["height"]), 0, 0)
        ctx.imageSmoothingEnabled = True
        ctx.drawImage(heat, 0, 0, size, size)
        grid = result["grid"]
        canvas.setAttribute("data-peak", str(grid.index(max(grid))))  # for tests: the strongest cell
        verb = "suggested" if item.label is None else "labelled"
        words.textContent = (f"The model {verb} “{result['label']}”. The red areas pushed it most towards that "
                             "label; areas without colour did not.")

    def _study_line(self):
        """Whether this participant's actions are recorded for the study, and the switch."""
        box = el("p", cls="study", id="study")
        text = el("span", id="study-status")
        toggle = el("button", type="button", id="study-toggle", cls="link")
        more = el("details", cls="study-notice")
        more.appendChild(el("summary", "What is recorded?"))
        more.appendChild(el("p", self.p.study.notice))
        box.appendChild(text)
        box.appendChild(toggle)
        box.appendChild(more)

        def show() -> None:
            if self.p.study.recording:
                text.textContent = "Study: what you do here is recorded for research (never your images). "
                toggle.textContent = "Stop recording"
            else:
                text.textContent = "Study: nothing you do here is recorded. "
                toggle.textContent = "Take part in the study"

        async def switch(event) -> None:
            await self.p.study.answer(not self.p.study.recording)
            show()

        on(toggle, "click", switch)
        show()
        asyncio.ensure_future(self._send_study_log())
        return box

    async def _watch_connection(self, every: float = 5.0) -> None:
        """An update that could not be sent waits on this device: say so, and send it as
        soon as the server answers again. The first look is at once: a page reloaded while
        an update waits says so from the start."""
        looked = False
        while True:
            if looked:
                await asyncio.sleep(every)
            looked = True
            try:
                if self.cancel is not None or not await self.p.client.has_unsent():
                    continue
                ack = await self.p.client.flush_outbox(retry=False)
            except ServerBusy:  # online: the server asked to wait (the outbox knows how long)
                set_status(self.p, waiting=1)
                if self.unsent != "busy":
                    self.unsent = "busy"
                    self._show_step()
                continue
            except ServerUnavailable:
                set_status(self.p, connected=False, waiting=1)
                if self.unsent != "offline":
                    self.unsent = "offline"
                    self._show_step()
                continue
            except ServerRefused as exc:
                by_id("train-result").textContent = (f"The update that waited was not taken: {exc.error}. "
                                                      "Train again to start from the newest model.")
                set_status(self.p)
                continue
            except Exception as exc:  # never let a background check break the page
                print(f"outbox: {exc}")
                continue
            if ack is not None:
                words = ("Sent now that the connection is back" if self.unsent == "offline"
                         else "Sent now that the server takes it")
                self.unsent = ""
                self._show_step()
                fed = ack.get("applied_version")
                words += f": the shared model is at version {fed}." if fed is not None else "."
                by_id("train-result").textContent = words
                self._save_state(round=(self.saved.get("round") or {}) | {"words": words, "at": time.time()})
                set_status(self.p)

    async def _send_study_log(self) -> None:
        """Send recorded actions every few seconds (they wait in IndexedDB meanwhile)."""
        while True:
            await asyncio.sleep(2)
            try:
                if self.p.study.pending:
                    await self.p.study.flush()
            except Exception as exc:  # never let a background send break the page
                print(f"study log: {exc}")

    def _extensions_section(self):
        """Panels built by extensions, and what went wrong loading or running any of them."""
        self.p.hooks.context.refresh = self.new_pass  # an extension's change may reorder the tiles
        panels = [(ext, panel) for ext, panel in self.p.hooks.call("panel") if panel is not None]
        if not panels and not self.p.extension_errors and not self.p.extensions:
            return None  # the task runs no extension: nothing to show or to report
        box = el("section", cls="card", id="extensions")
        for ext, panel in panels:
            box.appendChild(el("h2", ext.title or ext.name))
            box.appendChild(panel)
        box.appendChild(el("ul", cls="extension-errors", id="extension-errors"))
        return box

    def _show_extension_errors(self) -> None:
        box = by_id("extension-errors")
        if box is None:
            return
        clear(box)
        details = getattr(self.p.extension_errors, "tracebacks", {})
        for message in self.p.extension_errors:
            item = el("li", f"Something went wrong in an extension, and it was turned off: {message}")
            if message in details:  # the traceback, one click away
                more = el("details")
                more.appendChild(el("summary", "Technical details"))
                more.appendChild(el("pre", details[message]))
                item.appendChild(more)
            box.appendChild(item)

    def _add_section(self):
        box = el("section", cls="card step", id="add")
        box.appendChild(el("h2", "1. Add photos"))
        label_select = el("select", id="import-label")
        label_select.appendChild(el("option", "No label yet: I will check them", value=""))
        for name in self.p.classes:
            label_select.appendChild(el("option", f"All are: {name}", value=name))
        field = el("div", cls="field-inline")
        field.appendChild(el("label", "The photos you add are", for_="import-label"))
        field.appendChild(label_select)
        box.appendChild(field)
        picker = el("input", id="file-input", type="file", multiple="", accept="image/*,.zip")
        folder = el("input", id="folder-input", type="file", webkitdirectory="", multiple="")
        camera = el("input", id="camera-input", type="file", accept="image/*", capture="environment")
        drop = el("div", "…or drop photos, or a zip with one folder per class, here", cls="drop", id="drop")
        pickers = el("div", cls="pickers")
        for text, node in (("Photos or zip files", picker),
                           ("A folder (sub-folders named like classes become labels)", folder),
                           ("Take a photo", camera)):
            wrap = el("label", text, cls="pick-files")
            wrap.appendChild(node)
            pickers.appendChild(wrap)
        box.appendChild(pickers)
        box.appendChild(drop)
        box.appendChild(el("p", "", cls="message", id="import-message", aria_live="polite"))
        stop = el("button", "Stop adding", id="import-stop", type="button", hidden="")
        box.appendChild(stop)
        on(stop, "click", lambda e: self.importing and self.importing.cancel())
        on(picker, "change", lambda e: self.import_files(list(e.target.files)))
        on(folder, "change", lambda e: self.import_files(list(e.target.files)))
        on(camera, "change", lambda e: self.import_files(list(e.target.files)))

        def over(e):
            e.preventDefault()
            drop.classList.add("over")

        async def dropped(e):
            e.preventDefault()
            drop.classList.remove("over")
            await self.import_files(list(e.dataTransfer.files))

        on(drop, "dragover", over)
        on(drop, "dragleave", lambda e: drop.classList.remove("over"))
        on(drop, "drop", dropped)
        return box

    def _data_section(self):
        box = el("section", cls="card", id="data")
        box.appendChild(el("h2", "My photos"))
        box.appendChild(el("p", "About 1 in 5 labelled photos is kept aside for testing (marked “test”): "
                                "the model never trains on them, so testing on them is a fair check.",
                           cls="message"))
        box.appendChild(el("table", id="counts"))
        row = el("div", cls="row")
        export = el("button", "Save my photos as a zip", id="export", type="button")
        wipe = el("button", "Delete all my photos", id="clear", cls="danger", type="button")
        row.appendChild(export)
        row.appendChild(wipe)
        box.appendChild(row)
        on(export, "click", lambda e: download("webfl-images.zip", self.ds.export_zip()))
        on(wipe, "click", self.clear_all)
        return box

    def _review_section(self):
        box = el("section", cls="card step", id="review")
        box.appendChild(el("h2", "2. Check labels"))
        bar = el("div", cls="row")
        suggest = el("button", "Suggest labels", id="suggest", type="button")
        threshold = el("input", id="threshold", type="number", min="0", max="100", step="5", value="90")
        accept = el("button", "Accept suggestions", id="accept-all", type="button")
        sure = el("label", "Accept what the model is at least", for_="threshold", cls="inline")
        flt = el("select", id="filter")
        for value, text in FILTERS.items():
            flt.appendChild(el("option", text, value=value))
        for name in self.p.classes:
            flt.appendChild(el("option", f"Class {name}", value=f"class:{name}"))
        flt.value = self.filter
        show = el("label", "Show", for_="filter", cls="inline")
        bar.appendChild(suggest)
        group = el("span", cls="group")
        for node in (sure, threshold, el("span", "% sure of"), accept):
            group.appendChild(node)
        bar.appendChild(group)
        group = el("span", cls="group")
        group.appendChild(show)
        group.appendChild(flt)
        bar.appendChild(group)
        box.appendChild(bar)
        box.appendChild(el("progress", id="suggest-progress", max="1", value="0", hidden=True,
                           aria_label="Looking at your photos"))
        box.appendChild(el("p", "", cls="message", id="suggest-message", aria_live="polite"))
        # not a live region: it changes every few photos, and nothing waits on it
        box.appendChild(el("p", "", cls="message", id="prepare-message"))
        box.appendChild(el("p", "Keyboard: arrow keys move between photos, a class's number key labels the photo, "
                                "Enter accepts a suggestion, Delete removes the photo (with an undo).",
                           cls="message keys"))
        grid = el("div", cls="grid", id="grid")
        box.appendChild(grid)
        # One listener each for every tile, now and after any re-render: tiles bind nothing.
        on(grid, "keydown", self.on_key)
        on(grid, "click", self.on_grid_click)
        on(grid, "change", self.on_grid_change)
        on(grid, "focusin", self.on_grid_focus)
        on(suggest, "click", lambda e: self.suggesting.cancel() if self.suggesting else self.suggest())
        on(accept, "click", lambda e: self.accept_all(self._threshold()))
        on(threshold, "input", lambda e: self._show_accept_count())

        async def set_filter(e):
            self.filter = str(flt.value)
            self.new_pass()
            self._save_state(filter=self.filter)

        on(flt, "change", set_filter)
        return box

    def _train_section(self):
        box = el("section", cls="card step", id="train")
        box.appendChild(el("h2", "3. Train on this device"))
        row = el("div", cls="row")
        start = el("button", "Train and send what the model learned", id="train-button", type="button")
        row.appendChild(start)
        box.appendChild(row)
        box.appendChild(el("p", "", id="train-reason", cls="message"))
        holder = el("div", cls="chart-box small", id="loss-box", hidden="")
        holder.appendChild(el("canvas", id="loss-chart", role="img",
                              aria_label="Training error after each batch of photos (lower is better)"))
        box.appendChild(holder)
        box.appendChild(el("p", "", id="train-text", aria_live="polite"))
        box.appendChild(el("p", "", id="train-result", aria_live="polite"))
        on(start, "click", lambda e: self.train())
        return box

    def _test_section(self):
        box = el("section", cls="card step", id="test")
        box.appendChild(el("h2", "4. Test the model"))
        box.appendChild(el("p", "How often the model is right on your photos marked “test”, which it never "
                                "trained on.", cls="message"))
        button = el("button", "Test the shared model on my test photos", id="test-button", type="button")
        box.appendChild(button)
        box.appendChild(el("div", "", id="test-result", aria_live="polite"))
        on(button, "click", lambda e: self.test())
        return box

    # --- state -> view ----------------------------------------------------------------------
    def situation(self) -> Situation:
        counts = self.ds.counts()
        per = counts["per_class"].values()
        return Situation(total=counts["total"], unlabelled=counts["unlabelled"], suggested=counts["suggested"],
                         labelled_train=sum(c["train"] for c in per), labelled_test=sum(c["test"] for c in per),
                         min_labelled=int(self.p.task["training"]["min_labelled"]), version=self.p.version,
                         trained_on=(self.saved.get("round") or {}).get("labelled"),
                         tested_version=(self.saved.get("test") or {}).get("version"))

    def refresh(self) -> None:
        """Redraw counts, tiles (in place) and the next step; tiles do not move."""
        self._show_extension_errors()
        self.render_counts()
        self.render_grid()
        ok, why = self.p.can_train()
        training = self.cancel is not None
        by_id("train-button").disabled = not ok or training
        by_id("train-reason").textContent = why.replace("images", "photos")
        self._show_accept_count()
        self._show_step()

    def new_pass(self) -> None:
        """Start a review pass: choose and order the tiles once (filter, suggestions, imports)."""
        self.order = [i.id for i in self._matching()]
        self._deleted.clear()
        self._forget_gone_pictures()
        self.refresh()

    def _forget_gone_pictures(self) -> None:
        """Photos deleted for good (no undo left) give back their tile pictures' memory: a
        blob URL keeps its bytes for as long as the page lives unless it is revoked."""
        for item_id in [i for i in self._thumbs if i not in self.ds.items]:
            forget_object_url(self._thumbs.pop(item_id))

    def _show_step(self) -> None:
        self.step = next_step(self.situation())
        training = self.cancel is not None
        waiting = ("No connection: your last update waits on this device and is sent as soon as the connection "
                   "returns. " if self.unsent == "offline" else "")
        by_id("next-hint").textContent = waiting + ("Training on this device… You can keep using the page."
                                                    if training else f"Step {self.step.number} of 4: {self.step.hint}")
        go = by_id("next-action")
        go.textContent = self.step.action
        go.hidden = training
        for key in STEPS:
            item = js_query(f'#steps li[data-step="{key}"]')
            link = by_id(f"step-{key}")
            here = key == ("train" if training else self.step.key)
            item.classList.toggle("current", here)
            if here:
                link.setAttribute("aria-current", "step")
            else:
                link.removeAttribute("aria-current")

    async def do_next(self, event=None) -> None:
        """The action bar's main button: the next step's action."""
        step = self.step or next_step(self.situation())
        if step.does == "pick-files":
            by_id("file-input").click()
        elif step.does == "suggest":
            await self.suggest()
        elif step.does == "train":
            await self.train()
        elif step.does == "test":
            await self.test()
        else:  # label-first / check-first: the first photo that needs the participant
            wanted = "suggested" if step.does == "check-first" else "unlabelled"
            first = next((i for i in self.order if i in self.ds.items and self.ds.items[i].status == wanted), None)
            if first is None:
                self.filter = wanted
                by_id("filter").value = wanted
                self.new_pass()
                first = self.order[0] if self.order else None
            if first is not None:
                self._focus(first, scroll=True)

    def render_counts(self) -> None:
        counts = self.ds.counts()
        table = by_id("counts")
        clear(table)
        head = el("tr")
        for text in ("Class", "For training", "For testing"):
            head.appendChild(el("th", text, scope="col"))
        table.appendChild(head)
        for name, c in counts["per_class"].items():
            row = el("tr", cls="count-row")
            row.setAttribute("data-class", name)
            for text in (name, str(c["train"]), str(c["test"])):
                row.appendChild(el("td", text))
            table.appendChild(row)
        foot = el("tr")
        foot.appendChild(el("td", f"{counts['total']} images: {counts['labelled']} labelled, "
                                  f"{counts['suggested']} suggested, {counts['unlabelled']} unlabelled",
                            id="count-summary", colspan="3"))
        table.appendChild(foot)

    def _matching(self) -> list[Item]:
        order = {item_id: n for n, item_id in enumerate(self.p.review_ids() or [])}
        items = sorted(self.ds.items.values(), key=lambda i: (i.label is not None, order.get(i.id, len(order)),
                                                               -(i.confidence or 0), i.added))
        if self.filter.startswith("class:"):
            name = self.filter[6:]
            return [i for i in items if (i.label or i.suggestion) == name]
        return [i for i in items if self.filter == "all" or i.status == self.filter]

    def render_grid(self) -> None:
        """Draw the tiles of this pass. Tiles are made as HTML in one call, and only those whose
        look changed are redrawn: building 300 tiles element by element held the page ~250 ms."""
        import js

        grid = by_id("grid")
        had_focus = present(js.document.activeElement) and grid.contains(js.document.activeElement)
        shown = [i for i in self.order if i in self.ds.items or i in self._deleted]
        for name, value in (("role", "list"), ("aria-label", "Your photos")):
            if shown:
                grid.setAttribute(name, value)
            else:
                grid.removeAttribute(name)
        if not shown:
            if self._rest is not None:
                self._rest.cancel()
                self._rest = None
            clear(grid)
            self._drawn = []
            empty = ("No photos yet. Add some in step 1." if not self.ds.items
                     else "No photos match what is shown. Choose “All photos” to see every one.")
            grid.appendChild(el("p", empty, cls="empty", id="grid-empty"))
            return
        if self.current not in shown:
            self.current = shown[0]
        drawn = [(item_id, self._tile_look(item_id)) for item_id in shown[:MAX_TILES]]
        more = max(0, len(shown) - MAX_TILES)
        same = ([i for i, _ in drawn] == [i for i, _ in self._drawn] and more == self._drawn_more
                and self._rest is None  # every tile of the last redraw is on the page
                and present(grid.querySelector(f'.tile[data-id="{drawn[0][0]}"]')))  # the page may be new
        changed = [item_id for (item_id, look), (_, was) in zip(drawn, self._drawn) if look != was] if same else []
        if same and len(changed) <= REDRAW_ONE_BY_ONE:
            for item_id in changed:
                old = grid.querySelector(f'.tile[data-id="{item_id}"]')
                old.replaceWith(from_markup(self._tile_markup(item_id)))
        else:  # a new pass, or so many changed (accept all) that one redraw is cheaper
            self._redraw(grid, [item_id for item_id, _ in drawn], more)
        self._drawn, self._drawn_more = drawn, more
        if had_focus and not grid.contains(js.document.activeElement):
            self._focus(self.current)

    def _redraw(self, grid, ids: list[str], more: int) -> None:
        """All tiles anew: the first ones (what the screen shows) now, the rest in slices after
        this task, so that a long grid never holds the page (300 tiles at once took ~130 ms)."""
        if self._rest is not None:
            self._rest.cancel()
            self._rest = None
        grid.replaceChildren(from_markup("".join(self._tile_markup(i) for i in ids[:TILES_AT_ONCE])))
        tail = markup("p", f"…and {more} more: pick a class under “Show” to see them", cls="empty",
                      role="listitem") if more else ""
        if len(ids) <= TILES_AT_ONCE:
            if tail:
                grid.append(from_markup(tail))
            return

        async def rest() -> None:
            try:
                for start in range(TILES_AT_ONCE, len(ids), TILES_AT_ONCE):
                    await asyncio.sleep(0)
                    part = "".join(self._tile_markup(i) for i in ids[start:start + TILES_AT_ONCE]
                                   if i in self.ds.items or i in self._deleted)
                    grid.append(from_markup(part + (tail if start + TILES_AT_ONCE >= len(ids) else "")))
            finally:
                if self._rest is task:
                    self._rest = None

        task = self._rest = asyncio.ensure_future(rest())

    def _tile_look(self, item_id: str) -> tuple:
        """Everything a tile shows: it is redrawn when this changes."""
        if item_id in self._deleted:
            return ("deleted", item_id == self.current)
        i = self.ds.items[item_id]
        return (i.label, i.source, i.suggestion, i.confidence, i.split, i.name, item_id == self.current)

    def _tile_markup(self, item_id: str) -> str:
        if item_id in self._deleted:
            return self._placeholder(item_id)
        item = self.ds.items[item_id]
        tab = "0" if item.id == self.current else "-1"  # one tab stop for the grid; arrow keys move in it
        if item.id not in self._thumbs:
            self._thumbs[item.id] = picture_url(item)
        frame = [markup("img", src=self._thumbs[item.id], alt="", loading="lazy")]
        if item.split == "test":
            frame.append(markup("span", "test", cls="badge test",
                                title="Kept aside to test the model; never trained on"))
        frame.append(markup("button", "✕", cls="delete", type="button", tabindex=tab,
                            aria_label=f"Delete {item.name}", title="Delete this photo (you can undo)",
                            data_action="delete"))
        if item.label is not None:
            caption = [markup("span", f"{item.label} ({item.source})", cls="label")]
        elif item.suggestion is not None:
            caption = [markup("span", f"{item.suggestion}? {item.confidence:.0%}", cls="suggestion",
                              title="The model's suggestion and how sure it is")]
        else:
            caption = [markup("span", "no label yet", cls="none")]
        options = self._label_options(item.label)
        controls = []
        if item.label is None and item.suggestion is not None:
            controls.append(markup("button", f"✓ Accept {item.suggestion}", cls="accept", type="button",
                                   tabindex=tab, aria_label=f"Accept {item.suggestion} for {item.name}",
                                   data_action="accept"))
        controls.append(markup("select", cls="pick", tabindex=tab, aria_label=f"Label for {item.name}",
                               children=options))
        if self.p.can_explain and (item.label or item.suggestion) is not None:
            controls.append(markup("button", "Why this label?", cls="why-button link", type="button", tabindex=tab,
                                   aria_label=f"Why {item.label or item.suggestion} for {item.name}?",
                                   data_action="why"))
        caption.append(markup("div", cls="tile-controls", children=tuple(controls)))
        return markup("figure", cls=f"tile {item.status}", tabindex=tab, role="listitem", data_id=item.id,
                      aria_label=_tile_words(item),
                      children=(markup("div", cls="thumb", children=tuple(frame)),
                                markup("figcaption", children=tuple(caption))))

    def _label_options(self, label: str | None) -> tuple[str, ...]:
        """A tile's label menu, made once per label: every tile has one (ten classes made
        this half of a tile's markup)."""
        made = self._options.get(label)
        if made is None:
            made = self._options[label] = (markup("option", "Label…", value=""), *(
                markup("option", name, value=name, selected="" if name == label else None)
                for name in self.p.classes))
        return made

    def _placeholder(self, item_id: str) -> str:
        """Where a photo was deleted: it stays in place until the pass ends, with an undo."""
        item = self._deleted[item_id]
        tab = "0" if item_id == self.current else "-1"
        return markup("figure", cls="tile deleted", tabindex=tab, role="listitem", aria_label=f"{item.name} deleted",
                      data_id=item_id, children=(
                          markup("p", "Photo deleted"),
                          markup("button", "Undo", cls="undo", type="button", tabindex=tab,
                                 aria_label=f"Undo deleting {item.name}", data_action="undo")))

    def _show_accept_count(self) -> None:
        threshold = self._threshold()
        n = sum(1 for i in self.ds.unlabelled() if i.suggestion is not None and (i.confidence or 0) >= threshold)
        by_id("accept-all").textContent = f"Accept {n} suggestion{'s' if n != 1 else ''}"

    def _threshold(self) -> float:
        try:
            value = float(by_id("threshold").value)
        except (TypeError, ValueError):
            value = 90.0
        return min(100.0, max(0.0, value)) / 100

    async def on_grid_click(self, event) -> None:
        """Accept, delete and undo buttons of any tile (delegated from the grid)."""
        button = event.target.closest("button[data-action]") if present(event.target) else None
        if not present(button):
            return
        item_id = button.closest(".tile").getAttribute("data-id")
        await self._act(item_id, button.getAttribute("data-action"))

    async def _act(self, item_id: str, action: str) -> None:
        self.current = item_id
        if action == "why":
            await self.show_why(item_id)
            return
        if action == "accept":
            await self.ds.accept(item_id)
        elif action == "delete":
            self._deleted[item_id] = self.ds.get(item_id)
            await self.ds.delete(item_id)
        elif action == "undo" and item_id in self._deleted:
            await self.ds.restore(self._deleted.pop(item_id))
        self.refresh()

    async def on_grid_change(self, event) -> None:
        """A label picked from any tile's menu (delegated from the grid)."""
        target = event.target
        if not present(target) or not target.classList.contains("pick") or not str(target.value):
            return
        item_id = target.closest(".tile").getAttribute("data-id")
        self.current = item_id
        await self.ds.correct(item_id, str(target.value))
        self.refresh()

    async def on_grid_focus(self, event) -> None:
        """Remember the review position (kept across reloads) and move the grid's tab stop."""
        tile = event.target.closest(".tile") if present(event.target) else None
        if not present(tile):
            return
        item_id = str(tile.getAttribute("data-id"))
        if item_id != self.current:
            self._set_tab_stop(item_id)
            self.current = item_id
            self._save_state(focus=item_id)

    def _set_tab_stop(self, item_id: str) -> None:
        import js

        for node in js.document.querySelectorAll("#grid [tabindex]"):
            owner = node.closest(".tile")
            node.setAttribute("tabindex", "0" if owner.getAttribute("data-id") == item_id else "-1")

    def _key_label(self, key: str) -> str | None:
        if key in self.p.classes:
            return key
        if key.isdigit() and key != "0" and int(key) <= len(self.p.classes):
            return self.p.classes[int(key) - 1]
        matches = [c for c in self.p.classes if c[:1].lower() == key.lower()]
        return matches[0] if len(matches) == 1 else None

    async def on_key(self, event) -> None:
        """Label without a mouse: focus moves on to the next photo after each action."""
        import js

        tile = event.target.closest(".tile") if present(event.target) else None
        if not present(tile) or event.target.tagName in ("SELECT", "INPUT", "BUTTON"):
            return
        ids = [t.getAttribute("data-id") for t in js.document.querySelectorAll("#grid .tile")]
        item_id = tile.getAttribute("data-id")
        index = ids.index(item_id)
        key = str(event.key)
        moves = {"ArrowRight": 1, "ArrowDown": 1, "ArrowLeft": -1, "ArrowUp": -1, "Home": -len(ids),
                 "End": len(ids)}
        if key in moves:
            event.preventDefault()
            self._focus(ids[max(0, min(len(ids) - 1, index + moves[key]))])
            return
        if item_id in self._deleted:
            if key in ("Enter", "u", "z"):
                event.preventDefault()
                await self._act(item_id, "undo")
                self._focus(item_id)
            return
        item = self.ds.get(item_id)
        if key == "Enter" and item.label is None and item.suggestion is not None:
            await self.ds.accept(item_id)
        elif key in ("Delete", "Backspace"):
            self._deleted[item_id] = item
            await self.ds.delete(item_id)
        elif self._key_label(key) is not None:
            await self.ds.correct(item_id, self._key_label(key))
        else:
            return
        event.preventDefault()
        # tiles stay in place: the next one that still needs a label, else simply the next
        following = ids[index + 1:]
        waiting = [i for i in following if i in self.ds.items and self.ds.items[i].label is None]
        self.current = (waiting or following or [item_id])[0]
        self.refresh()
        self._focus(self.current)

    def _focus(self, item_id: str, scroll: bool = False) -> None:
        import js

        node = js.document.querySelector(f'#grid .tile[data-id="{item_id}"]')
        if present(node):
            self._set_tab_stop(item_id)
            self.current = item_id
            node.focus()
            if scroll:
                node.scrollIntoView(js.Object.fromEntries([["block", "center"]]))

    # --- actions ---------------------------------------------------------------------------
    @long_work
    async def import_files(self, files) -> None:
        message = by_id("import-message")
        label = by_id("import-label").value or None
        message.textContent = f"Reading {len(files)} file{'s' if len(files) != 1 else ''}…"
        before = len(self.ds.items)

        def stopped(reason: str) -> str:
            n = len(self.ds.items) - before
            return f"The import stopped after adding {n} image{'s' if n != 1 else ''}: {reason}. {ADD_THE_REST}"

        if self.importing is None or self.importing.cancelled:  # one Stop for imports side by side;
            self.importing = CancelToken()  # files chosen after a Stop are not stopped by it
        self._imports += 1
        by_id("import-stop").hidden = False
        try:
            with says_if_it_stops(message, stopped):
                await self._import_files(files, message, label, self.importing)
        finally:  # what was added shows; the same files can be chosen again (an unchanged input
            self._imports -= 1
            if self._imports == 0:
                self.importing = None
                by_id("import-stop").hidden = True
            for id_ in ("file-input", "folder-input", "camera-input"):  # sends no change event)
                by_id(id_).value = ""
            self.new_pass()
        # the model looks at the new photos while the participant does: suggestions and the first
        # round then find most of them ready (not during the import: both want the same cores)
        self.p.prepare_in_background(self._show_preparing)

    async def _import_files(self, files, message, label: str | None, cancel: CancelToken) -> None:
        from ..dataset import IMPORT_CHUNK, ImportReport
        from ..zip_reader import BlobSource

        report = ImportReport()
        offset = 0

        async def progress(done: int, total: int) -> None:
            since = time.perf_counter()  # the tiles' pictures, made a chunk at a time, a few per browser task
            for item in list(self.ds.items.values()):  # (the import adds items while this waits)
                if item.id not in self._thumbs:
                    self._thumbs[item.id] = picture_url(item)
                    if time.perf_counter() - since > PICTURES_SECONDS:
                        await asyncio.sleep(0)
                        since = time.perf_counter()
            if total > IMPORT_CHUNK or len(files) > 1:
                message.textContent = f"Adding images: {offset + done} of {max(total, len(files))}…"

        # files with the same label go in together, so many small images share one write
        groups: dict[str | None, list[tuple[str, bytes]]] = {}
        for i, f in enumerate(files):
            if cancel.cancelled:
                report.stopped = True
                break
            path = str(getattr(f, "webkitRelativePath", "") or f.name)
            parts = path.split("/")
            folder = parts[-2] if len(parts) >= 2 else None
            # a zip is read a chunk at a time as the import goes (copied whole, all of it would sit
            # in the wasm heap, which never shrinks: browser_py.zip_reader); a photo whole
            content = BlobSource(f) if path.lower().endswith(".zip") else (await f.arrayBuffer()).to_bytes()
            groups.setdefault(folder if folder in self.p.classes else label, []).append((path, content))
            if sum(map(len, groups.values())) >= IMPORT_CHUNK or i == len(files) - 1:
                for item_label, group in groups.items():
                    report.merge(await self.p.import_files(group, item_label, progress, lambda: cancel.cancelled))
                    offset += len(group)
                groups = {}
        text = report.summary() + "."
        if report.stopped:
            text = f"Stopped: {report.summary()}. {ADD_THE_REST}"
        if report.rejected:
            text += " " + "; ".join(f"{name}: {why}" for name, why in report.rejected[:5])
        message.textContent = text

    async def _show_preparing(self, done: int, total: int) -> None:
        """While the model looks at new photos in the background: how far, in plain words."""
        node = by_id("prepare-message")
        if present(node):  # the page may be drawn afresh meanwhile
            node.textContent = "" if done >= total else \
                f"Getting your photos ready for label suggestions: {done} of {total}."

    @long_work
    async def suggest(self) -> None:
        """Suggestions for the unlabelled photos; meanwhile the button stops them (for 200
        photos they took 5.9-7.5 s here)."""
        if self.suggesting is not None:
            return  # already on their way
        button, bar, message = by_id("suggest"), by_id("suggest-progress"), by_id("suggest-message")
        button.textContent = "Stop suggesting"
        self.suggesting = stop = CancelToken()

        async def preparing(done: int, total: int) -> None:  # new photos are looked at first
            bar.hidden, bar.value = False, done / max(1, total)
            message.textContent = f"Looking at your photos: {done} of {total}"
            await asyncio.sleep(0)

        try:
            with says_if_it_stops(message, lambda why: f"The suggestions stopped: {why}. "
                                  "Press Suggest labels to try again."):
                ids = await self.p.suggest(preparing=preparing, cancel=stop)
        except Cancelled:
            message.textContent = ("Suggestions stopped. The photos looked at so far are ready: "
                                   "Suggest labels goes on from there.")
            return
        finally:
            self.suggesting = None
            button.textContent = "Suggest labels"
            bar.hidden = True
        by_id("suggest-message").textContent = suggestion_note(self.p.version, len(ids))
        if ids:
            self.filter = "suggested"
            by_id("filter").value = "suggested"
        self.new_pass()
        set_status(self.p)
        self._save_state(filter=self.filter)
        if ids:
            self._focus(self.order[0], scroll=True)

    @long_work
    async def accept_all(self, threshold: float) -> None:
        n = await self.ds.accept_above(threshold)
        text = f"Accepted {n} suggestion{'s' if n != 1 else ''}."
        if n == 0:
            waiting = [i.confidence for i in self.ds.unlabelled() if i.suggestion is not None]
            text = (f"No suggestion is {threshold:.0%} sure or more: the most confident is {max(waiting):.0%}. "
                    "Lower the number, or label these by hand." if waiting
                    else "There are no suggestions to accept: press Suggest labels first.")
        by_id("suggest-message").textContent = text
        self.refresh()

    async def clear_all(self, event=None) -> None:
        import js

        if not js.confirm("Delete all your photos and labels from this device? This cannot be undone."):
            return
        await self.ds.clear()
        self.new_pass()

    def _loss_chart(self):
        """The round's error chart, made once (ahead, when the page is idle: making it took
        ~25 ms of a first round's ~0.25 s here)."""
        from . import charts

        if self.loss_chart is None:
            self.loss_chart = charts.make(by_id("loss-chart"), "line", ["training error"], "batch",
                                          "error (lower is better)")
        return self.loss_chart

    def _show_loss(self, points: list[float]) -> None:
        from . import charts

        by_id("loss-box").hidden = False
        charts.set_data(self._loss_chart(), list(range(1, len(points) + 1)), [points])

    def _show_kept_losses(self) -> None:
        """Make the error chart ahead and draw the last round's curve in it, if one was kept
        and no round has begun since: its words are shown already (and a round after a
        reload then finds the chart laid out, as in the same page)."""
        chart = self._loss_chart()
        if self.kept_losses and self.cancel is None and chart.data.labels.length == 0:
            self._show_loss(self.kept_losses)

    @long_work
    async def train(self) -> None:
        start, stop = by_id("train-button"), by_id("cancel")
        bar, text, result_box = by_id("train-progress"), by_id("train-text"), by_id("train-result")
        if self.cancel is not None:
            return  # a round is running
        self.cancel = CancelToken()
        start.disabled, stop.hidden, bar.hidden = True, False, False
        bar.value = 0
        result_box.textContent = ""
        self._show_step()
        by_id("loss-box").hidden = False
        self._loss_chart()
        drawn = {"at": time.monotonic()}
        points: list[float] = []
        epoch_sum = {"epoch": -1, "sum": 0.0, "n": 0}
        epoch_ends: dict[int, int] = {}  # epoch -> index of its last point

        def progress(p: Progress) -> None:  # no pause: training gives the page its turn after each slice
            if p.epoch != epoch_sum["epoch"]:
                epoch_sum.update(epoch=p.epoch, sum=0.0, n=0)
            epoch_sum["sum"] += p.loss
            epoch_sum["n"] += 1
            running = epoch_sum["sum"] / epoch_sum["n"]  # the epoch's error so far: ends at the epoch's figure
            bar.value = p.fraction
            text.textContent = f"Pass {p.epoch + 1}/{p.epochs} over your photos · training error {running:.3f}"
            points.append(round(running, 4))
            epoch_ends[p.epoch] = len(points) - 1
            if time.monotonic() - drawn["at"] >= CHART_REDRAW_SECONDS:
                self._show_loss(points)
                drawn["at"] = time.monotonic()

        waiting = busy = False
        countdown = Countdown(text)
        last_wait = {"why": None}  # why sending the update last waited to try again

        def retrying(seconds: float, why: Exception) -> None:
            last_wait["why"] = why
            stop.textContent = "Stop waiting"  # the update is kept either way (round_words)
            countdown.start(seconds, lambda left: retry_words(left, why))

        try:
            text.textContent = "Preparing your photos…"

            prepared = False  # photos needed their features computed: the bar's first half

            async def preparing(done: int, total: int) -> None:
                nonlocal prepared
                prepared = True
                bar.value = 0.5 * done / max(1, total)
                text.textContent = f"Preparing your photos: {done} of {total}"
                await asyncio.sleep(0)

            def trained(p: Progress) -> None:
                progress(p)
                if prepared:
                    bar.value = 0.5 + 0.5 * p.fraction

            result: RoundResult = await self.p.train_round(progress=trained, cancel=self.cancel,
                                                           preparing=preparing, sending_waits=retrying)
            status = result.ack.get("status")
            waiting = status == "waiting" or (status == "stopped" and bool(result.ack.get("kept")))
            busy = bool(result.ack.get("busy")) or isinstance(last_wait["why"], ServerBusy)
            words = round_words(result)
            result_box.textContent = words
            losses = result.epoch_losses
            text.textContent = (f"Done. Training error went from {losses[0]:.3f} to {losses[-1]:.3f}."
                                if len(losses) > 1 else f"Done. Training error {losses[-1]:.3f}.")
            # each epoch's last point becomes the epoch's exact figure (batches differ in size)
            for epoch, loss in zip(sorted(epoch_ends), losses):
                points[epoch_ends[epoch]] = loss
            if points:
                self._show_loss(points)
            self._save_state(round={"words": words, "error": text.textContent, "at": time.time(),
                                    "labelled": result.samples, "version": self.p.version,
                                    "losses": points if len(points) <= KEPT_LOSS_POINTS else []})
            _bump("webflRoundsOk")
        except Cancelled:
            text.textContent = "Training cancelled. Nothing was sent."
        except NotEnoughData as exc:
            text.textContent = str(exc)
        except ServerRefused as exc:
            text.textContent = (f"The server did not take this update: {exc.error}. "
                                "Train again to start from the newest model.")
        except Exception as exc:  # unexpected: said here in plain words, and in the toast
            text.textContent = f"The round stopped: {plain_reason(exc)}. Start it again to try once more."
            raise
        finally:
            countdown.stop()
            stop.textContent = "Cancel training"
            _bump("webflRoundsEnded")  # for automation (experiments), like webflState
            stop.hidden, bar.hidden = True, True
            self.cancel = None
            self.unsent = ("busy" if busy else "offline") if waiting else ""
            set_status(self.p, connected=self.unsent != "offline", waiting=int(waiting))
            self.refresh()

    async def test(self) -> None:
        """The shared model (and the local one from the last round) on the test photos."""
        box = by_id("test-result")
        box.textContent = "Testing…"
        with says_if_it_stops(box, lambda why: f"The test stopped: {why}. Press the test button to try again."):
            outcome = await self.p.test()
        if not outcome:
            box.textContent = ("No labelled test photos yet: about 1 in 5 labelled photos is kept aside for "
                               "testing. Label more photos.")
            return
        self._save_state(test=outcome | {"at": time.time()})
        show_test(box, self.p.classes, outcome)
        set_status(self.p)
        self._show_step()

    def _show_saved_results(self) -> None:
        """The last round's outcome and the last test, as they were before a reload."""
        last = self.saved.get("round")
        if isinstance(last, dict) and last.get("words"):
            by_id("train-result").textContent = f"{last['words']} ({_ago(last.get('at'))})"
            by_id("train-text").textContent = str(last.get("error", ""))
            self.kept_losses = saved_curve(last.get("losses"))
        tested = self.saved.get("test")
        if isinstance(tested, dict) and tested.get("global"):
            try:
                show_test(by_id("test-result"), self.p.classes, tested)
            except (KeyError, TypeError, IndexError):
                pass  # saved by an older page: simply not shown


def saved_curve(value: object) -> list[float]:
    """A kept error curve as the chart can draw it; [] for anything else (kept by an older
    page, or damaged)."""
    if not isinstance(value, list) or len(value) > KEPT_LOSS_POINTS:
        return []
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return []
    return [float(v) for v in value]


def suggestion_note(version: int | None, count: int) -> str:
    """What the participant should know about the suggestions just made, in plain words."""
    if count == 0:
        return "Every photo has a label already: nothing to suggest."
    if not version:
        return ("The shared model has not learned from anyone yet, so these suggestions are guesses. "
                "Label a few photos of each class yourself first (pick a photo, press its class key), "
                "train, and ask again.")
    return (f"Suggested labels for {count} photo{'s' if count != 1 else ''}, from the shared model after "
            f"{version} update{'s' if version != 1 else ''}. Check them: accept the right ones, correct the rest.")


def round_words(result: RoundResult) -> str:
    """A round's outcome as the participant should read it."""
    ack = result.ack
    fed = ack.get("applied_version")
    if fed is not None:
        return (f"Sent. The shared model learned from your {result.samples} photos: it is now at version {fed}.")
    if ack.get("status") == "discarded":
        return ("Received, but not used: it pulled the shared model away from what the other participants "
                "taught it. Check your labels and train again.")
    if ack.get("status") == "vetoed":
        return f"Not sent: the extension {ack.get('by')} stopped it."
    if ack.get("status") == "stopped":
        return ("Stopped waiting: your update is kept on this device and sent by itself once the server takes it."
                if ack.get("kept") else "Stopped before sending: nothing was sent.")
    if ack.get("status") == "waiting" and ack.get("busy"):
        when = (f"in about {math.ceil(ack['retry_after'])} s" if isinstance(ack.get("retry_after"), (int, float))
                else "later")
        return (f"Saved on this device: the server asked to wait ({ack['busy']}). It is sent by itself {when} "
                "(you can keep working).")
    if ack.get("status") == "waiting":
        return ("Saved on this device: there is no connection to the server right now. It is sent as soon as "
                "the connection returns (you can keep working, or close the page).")
    return "Sent. It will be used together with other participants' updates shortly."


def retry_words(seconds: int, why: Exception) -> str:
    """What the participant reads while the page waits to ask the server again."""
    if isinstance(why, ServerBusy):
        return f"The server asked to wait: {why.reason}. Trying again in {seconds} s…"
    return f"No answer from the server yet. Trying again in {seconds} s…"


def show_test(box, classes: list[str], outcome: dict) -> None:
    """Test results in words, per class, and which classes get mixed up."""
    results = {}
    if outcome.get("local") is not None:
        results["Your model after your last training"] = outcome["local"]
    results[f"The shared model (version {outcome['version']})"] = outcome["global"]
    clear(box)
    for name, result in results.items():
        box.appendChild(el("p", f"{name}: right on {result['accuracy']:.0%} of {result['samples']} test photos.",
                           cls="test-accuracy"))
    more = el("details", cls="test-details")
    more.appendChild(el("summary", "Per class, and which classes get mixed up"))
    table = el("table", cls="per-class", id="per-class")
    head = el("tr")
    head.appendChild(el("th", "Class", scope="col"))
    for name in results:
        head.appendChild(el("th", name.split(" (")[0].replace("Your model after your last training", "Yours"),
                            scope="col"))
    table.appendChild(head)
    for i, cls_name in enumerate(classes):
        row = el("tr")
        row.appendChild(el("td", cls_name))
        for result in results.values():
            acc = result["per_class"][i]
            row.appendChild(el("td", "–" if acc is None else f"{acc:.0%}"))
        table.appendChild(row)
    more.appendChild(table)
    more.appendChild(confusion_table(classes, list(results.values())[-1]["confusion"]))
    box.appendChild(more)


def confusion_table(classes: list[str], confusion: list[list[int]]):
    """Rows: the right class, columns: what the model said; darker = more photos."""
    table = el("table", cls="confusion", id="confusion")
    table.appendChild(el("caption", "Which classes the shared model mixes up (rows: the right class, "
                                    "columns: what the model said)"))
    head = el("tr")
    head.appendChild(el("td", ""))
    for name in classes:
        head.appendChild(el("th", name, scope="col"))
    table.appendChild(head)
    top = max(1, max(max(r) for r in confusion))
    for name, row_values in zip(classes, confusion):
        row = el("tr")
        row.appendChild(el("th", name, scope="row"))
        for j, n in enumerate(row_values):
            cell = el("td", str(n) if n else "")
            shade = int(235 - 120 * n / top)  # light enough for dark text to stay readable
            colour = f"rgb({shade},{min(245, shade + 10)},255)" if n else "#fff"
            cell.setAttribute("style", f"background:{colour};text-align:center")
            row.appendChild(cell)
        table.appendChild(row)
    return table


def _tile_words(item: Item) -> str:
    """What a screen reader says for a tile."""
    test = ", kept for testing" if item.split == "test" else ""
    if item.label is not None:
        return f"{item.name}: {item.label} ({item.source}){test}"
    if item.suggestion is not None:
        return f"{item.name}: suggested {item.suggestion}, {item.confidence:.0%} sure{test}"
    return f"{item.name}: no label yet{test}"


def _ago(at) -> str:
    try:
        seconds = max(0, time.time() - float(at))
    except (TypeError, ValueError):
        return "earlier"
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{round(seconds / 60)} minutes ago"
    if seconds < 129600:
        return f"{round(seconds / 3600)} hours ago"
    return f"{round(seconds / 86400)} days ago"


def js_query(selector: str):
    import js

    return js.document.querySelector(selector)


def _bump(counter: str) -> None:
    import js

    data = js.document.documentElement.dataset
    setattr(data, counter, str(int(getattr(data, counter, None) or 0) + 1))


TILES_AT_ONCE = 30  # tiles drawn in one go (a screen's worth); the rest follow in slices (60 at once
# held the page 140-180 ms on a slow 2-core machine)
REDRAW_ONE_BY_ONE = 24  # more changed tiles than this are redrawn all at once
# the longest the page makes tile pictures for before it lets the browser run: a camera photo's
# thumbnail took ~0.8 ms (decoded from base64, copied to a Blob), so the 64 of an import chunk
# made in one go held the page 50-65 ms at a time (small images are inlined: far less each)
PICTURES_SECONDS = 0.012
INLINE_PICTURE_BYTES = 8 * 1024  # smaller pictures go inline as data: URLs (no call into the browser)


def picture_url(item: Item) -> str:
    """The URL a tile shows: the thumbnail of a large photo, else the image itself."""
    data = base64.b64decode(item.thumb) if item.thumb else item.data
    if len(data) <= INLINE_PICTURE_BYTES:
        return f"data:{_MIME.get(data[:2], 'image/png')};base64,{base64.b64encode(data).decode('ascii')}"
    return object_url(data)


_MIME = {b"\x89P": "image/png", b"\xff\xd8": "image/jpeg", b"GI": "image/gif", b"BM": "image/bmp", b"RI": "image/webp"}


def device_words(features_backend: str, training_backend: str) -> str:
    """What does the work on this device, for people: the graphics chip or the processor."""
    import re

    cores = re.search(r"(\d+) thread", training_backend)
    processor = (f"its processor ({cores.group(1)} core{'s' if cores.group(1) != '1' else ''} at once)" if cores
                 else "its processor")
    if features_backend == "WebGPU":
        return (f"This device looks at your photos with its graphics chip, which is fast, and trains with "
                f"{processor}. Nothing leaves it but the model's changes.")
    if features_backend == "none":
        return f"This device trains with {processor}. Nothing leaves it but the model's changes."
    return (f"This device looks at your photos and trains with {processor}: the browser offers no graphics "
            f"chip it can use here. Nothing leaves it but the model's changes.")


def set_status(p: Participant, connected: bool = True, waiting: int = 0) -> None:
    """Plain words in the header; the technical details one click away."""
    version = p.version
    learned = ("the shared model has not learned anything yet" if not version
               else f"the shared model has learned from {version} update{'s' if version != 1 else ''}")
    unsent = f" · {waiting} update{'s' if waiting != 1 else ''} waiting to send" if waiting else ""
    by_id("status").textContent = f"{'Online' if connected else 'No connection'} · {learned}{unsent}"
    device = by_id("device-words")
    if device is not None:
        device.textContent = device_words(p.features.backend, p.trainer.backend.name)
    tech = by_id("tech-text")
    if tech is not None:
        features = "" if p.features.backend == "none" else f"; features: {p.features.backend}"
        tech.textContent = (f"global version {'–' if version is None else version} · compute: "
                            f"{p.trainer.backend.name}{features}")


def extensions_notice(extensions: list[dict]):
    """Which extra code this task runs, in plain words (before joining and on the page)."""
    box = el("div", cls="extensions-notice", id="extensions-notice")
    box.appendChild(el("p", "This task also runs extensions chosen by its organiser. They run on this device "
                            "with the same access as the page:"))
    items = el("ul")
    for ext in extensions:
        line = f"{ext.get('title') or ext['name']}" + (f": {ext['description']}" if ext.get("description") else "")
        items.appendChild(el("li", line))
    box.appendChild(items)
    return box
