"""The participant page: add images, review suggestions, train, see results."""
from __future__ import annotations

import asyncio

from ..dataset import Item
from ..participant import NotEnoughData, Participant, RoundResult
from ..protocol import ServerRefused
from ..trainer import Cancelled, CancelToken, Progress
from .dom import by_id, clear, download, el, object_url, on, present

FILTERS = ("all", "unlabelled", "suggested", "labelled")


class ParticipantPage:
    def __init__(self, participant: Participant, root) -> None:
        self.p = participant
        self.root = root
        self.cancel: CancelToken | None = None
        self.filter = "all"
        self._thumbs: dict[str, str] = {}
        self.loss_chart = None

    @property
    def ds(self):
        return self.p.dataset

    # --- layout -------------------------------------------------------------------------
    def render(self) -> None:
        task = self.p.task
        head = el("section", cls="card", id="task")
        head.appendChild(el("h1", task["title"]))
        head.appendChild(el("p", "Your images stay on this device. Only model parameters are sent to the server.",
                            cls="privacy"))
        if task.get("extensions"):
            head.appendChild(extensions_notice(task["extensions"]))
        if self.p.study.enabled:
            head.appendChild(self._study_line())
        chips = el("ul", cls="classes")
        for name in self.p.classes:
            chips.appendChild(el("li", name))
        head.appendChild(chips)
        self.root.appendChild(head)
        self.root.appendChild(self._add_section())
        self.root.appendChild(self._data_section())
        self.root.appendChild(self._review_section())
        self.root.appendChild(self._train_section())
        self.root.appendChild(self._test_section())
        extras = self._extensions_section()
        if extras is not None:
            self.root.insertBefore(extras, by_id("add"))
        self.refresh()

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
        self.p.hooks.context.refresh = self.refresh
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
        box = el("section", cls="card", id="add")
        box.appendChild(el("h2", "Add images"))
        label_select = el("select", id="import-label", aria_label="Label for the added images")
        label_select.appendChild(el("option", "No label: I will review them", value=""))
        for name in self.p.classes:
            label_select.appendChild(el("option", f"All are: {name}", value=name))
        picker = el("input", id="file-input", type="file", multiple="", accept="image/*,.zip")
        folder = el("input", id="folder-input", type="file", webkitdirectory="", multiple="")
        camera = el("input", id="camera-input", type="file", accept="image/*", capture="environment")
        drop = el("div", "Drop images or a zip with one folder per class here", cls="drop", id="drop")
        box.appendChild(label_select)
        for text, node in (("Images or zip files", picker), ("A folder (sub-folders named like classes are used "
                                                                "as labels)", folder), ("Take a photo", camera)):
            wrap = el("label", text, cls="pick-files")
            wrap.appendChild(node)
            box.appendChild(wrap)
        box.appendChild(drop)
        box.appendChild(el("p", "", cls="message", id="import-message", aria_live="polite"))
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
        box.appendChild(el("h2", "My data"))
        box.appendChild(el("table", id="counts"))
        row = el("div", cls="row")
        export = el("button", "Export as zip", id="export", type="button")
        wipe = el("button", "Delete all my images", id="clear", cls="danger", type="button")
        row.appendChild(export)
        row.appendChild(wipe)
        box.appendChild(row)
        on(export, "click", lambda e: download("webfl-images.zip", self.ds.export_zip()))
        on(wipe, "click", self.clear_all)
        return box

    def _review_section(self):
        box = el("section", cls="card", id="review")
        box.appendChild(el("h2", "Review labels"))
        bar = el("div", cls="row")
        suggest = el("button", "Suggest labels", id="suggest", type="button")
        threshold = el("input", id="threshold", type="number", min="0", max="1", step="0.05", value="0.9",
                       aria_label="Confidence threshold")
        accept = el("button", "Accept all above", id="accept-all", type="button")
        flt = el("select", id="filter", aria_label="Show")
        for name in FILTERS:
            flt.appendChild(el("option", name, value=name))
        for name in self.p.classes:
            flt.appendChild(el("option", f"class {name}", value=f"class:{name}"))
        for node in (suggest, accept, threshold, flt):
            bar.appendChild(node)
        box.appendChild(bar)
        box.appendChild(el("p", "", cls="message", id="suggest-message", aria_live="polite"))
        box.appendChild(el("p", "Keyboard: arrows move, a class's key (or 1-9) labels, Enter accepts the "
                                "suggestion, Delete removes.", cls="message keys"))
        grid = el("div", cls="grid", id="grid")
        box.appendChild(grid)
        # One listener each for every tile, now and after any re-render: tiles bind nothing.
        on(grid, "keydown", self.on_key)
        on(grid, "click", self.on_grid_click)
        on(grid, "change", self.on_grid_change)
        on(suggest, "click", lambda e: self.suggest())
        on(accept, "click", lambda e: self.accept_all(float(threshold.value or 0.9)))

        def set_filter(e):
            self.filter = flt.value
            self.render_grid()

        on(flt, "change", set_filter)
        return box

    def _train_section(self):
        box = el("section", cls="card", id="train")
        box.appendChild(el("h2", "Train on this device"))
        row = el("div", cls="row")
        start = el("button", "Train and send update", id="train-button", cls="primary", type="button")
        stop = el("button", "Cancel", id="cancel", type="button", hidden="")
        row.appendChild(start)
        row.appendChild(stop)
        box.appendChild(row)
        box.appendChild(el("p", "", id="train-reason", cls="message"))
        progress = el("progress", id="train-progress", max="1", value="0", hidden="")
        box.appendChild(progress)
        holder = el("div", cls="chart-box small", id="loss-box", hidden="")
        holder.appendChild(el("canvas", id="loss-chart", role="img", aria_label="Training loss per batch"))
        box.appendChild(holder)
        box.appendChild(el("p", "", id="train-text", aria_live="polite"))
        box.appendChild(el("p", "", id="train-result", aria_live="polite"))
        on(start, "click", lambda e: self.train())
        on(stop, "click", lambda e: self.cancel and self.cancel.cancel())
        return box

    def _test_section(self):
        box = el("section", cls="card", id="test")
        box.appendChild(el("h2", "Test the model"))
        button = el("button", "Test the global model on my test images", id="test-button", type="button")
        box.appendChild(button)
        box.appendChild(el("div", "", id="test-result", aria_live="polite"))
        on(button, "click", lambda e: self.test())
        return box

    # --- state -> view ----------------------------------------------------------------------
    def refresh(self) -> None:
        self._show_extension_errors()
        self.render_counts()
        self.render_grid()
        ok, why = self.p.can_train()
        by_id("train-button").disabled = not ok
        by_id("train-reason").textContent = why

    def render_counts(self) -> None:
        counts = self.ds.counts()
        table = by_id("counts")
        clear(table)
        head = el("tr")
        for text in ("Class", "Train", "Test"):
            head.appendChild(el("th", text))
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

    def _visible(self) -> list[Item]:
        order = {item_id: n for n, item_id in enumerate(self.p.review_ids() or [])}
        items = sorted(self.ds.items.values(), key=lambda i: (i.label is not None, order.get(i.id, len(order)),
                                                               -(i.confidence or 0), i.added))
        if self.filter.startswith("class:"):
            name = self.filter[6:]
            return [i for i in items if (i.label or i.suggestion) == name]
        return [i for i in items if self.filter == "all" or i.status == self.filter]

    def render_grid(self) -> None:
        grid = by_id("grid")
        clear(grid)
        items = self._visible()
        if not items:
            grid.appendChild(el("p", "No images here yet. Add some above.", cls="empty", id="grid-empty"))
            return
        for item in items[:300]:
            grid.appendChild(self._tile(item))
        if len(items) > 300:
            grid.appendChild(el("p", f"…and {len(items) - 300} more", cls="empty"))

    def _tile(self, item: Item):
        tile = el("figure", cls=f"tile {item.status}", tabindex="0")
        tile.setAttribute("data-id", item.id)
        if item.id not in self._thumbs:
            self._thumbs[item.id] = object_url(item.data)
        tile.appendChild(el("img", src=self._thumbs[item.id], alt=item.name, loading="lazy"))
        caption = el("figcaption")
        if item.label is not None:
            caption.appendChild(el("span", f"{item.label} ({item.source})", cls="label"))
        elif item.suggestion is not None:
            caption.appendChild(el("span", f"{item.suggestion}? {item.confidence:.0%}", cls="suggestion"))
        else:
            caption.appendChild(el("span", "unlabelled", cls="none"))
        pick = el("select", cls="pick", aria_label=f"Label for {item.name}")
        pick.appendChild(el("option", "label…", value=""))
        for name in self.p.classes:
            option = el("option", name, value=name)
            if name == item.label:
                option.setAttribute("selected", "")
            pick.appendChild(option)
        caption.appendChild(pick)
        if item.label is None and item.suggestion is not None:
            ok = el("button", "✓", cls="accept", type="button", title="Accept the suggestion")
            ok.setAttribute("data-action", "accept")
            caption.appendChild(ok)
        bin_ = el("button", "✕", cls="delete", type="button", title="Delete this image")
        bin_.setAttribute("data-action", "delete")
        caption.appendChild(bin_)
        tile.appendChild(caption)
        return tile

    async def on_grid_click(self, event) -> None:
        """Accept and delete buttons of any tile (delegated from the grid)."""
        button = event.target.closest("button[data-action]") if present(event.target) else None
        if not present(button):
            return
        item_id = button.closest(".tile").getAttribute("data-id")
        action = button.getAttribute("data-action")
        await self._relabel(self.ds.accept(item_id) if action == "accept" else self.ds.delete(item_id))

    async def on_grid_change(self, event) -> None:
        """A label picked from any tile's menu (delegated from the grid)."""
        target = event.target
        if not present(target) or not target.classList.contains("pick") or not str(target.value):
            return
        await self._relabel(self.ds.correct(target.closest(".tile").getAttribute("data-id"), str(target.value)))

    async def _relabel(self, op) -> None:
        await op
        self.refresh()

    def _key_label(self, key: str) -> str | None:
        if key in self.p.classes:
            return key
        if key.isdigit() and key != "0" and int(key) <= len(self.p.classes):
            return self.p.classes[int(key) - 1]
        matches = [c for c in self.p.classes if c[:1].lower() == key.lower()]
        return matches[0] if len(matches) == 1 else None

    async def on_key(self, event) -> None:
        """Label without a mouse: focus moves on to the next image after each action."""
        import js

        tile = event.target.closest(".tile") if present(event.target) else None
        if not present(tile) or event.target.tagName in ("SELECT", "INPUT"):
            return
        ids = [t.getAttribute("data-id") for t in js.document.querySelectorAll("#grid .tile")]
        item_id = tile.getAttribute("data-id")
        index = ids.index(item_id)
        key = str(event.key)
        moves = {"ArrowRight": 1, "ArrowDown": 1, "ArrowLeft": -1, "ArrowUp": -1}
        if key in moves:
            event.preventDefault()
            self._focus(ids[max(0, min(len(ids) - 1, index + moves[key]))])
            return
        item = self.ds.get(item_id)
        if key == "Enter" and item.label is None and item.suggestion is not None:
            await self.ds.accept(item_id)
        elif key in ("Delete", "Backspace"):
            await self.ds.delete(item_id)
        elif self._key_label(key) is not None:
            await self.ds.correct(item_id, self._key_label(key))
        else:
            return
        event.preventDefault()
        self.refresh()
        remaining = [t.getAttribute("data-id") for t in js.document.querySelectorAll("#grid .tile")]
        if remaining:
            after = [i for i in ids[index + 1:] if i in remaining]
            self._focus(after[0] if after else remaining[min(index, len(remaining) - 1)])

    def _focus(self, item_id: str) -> None:
        import js

        node = js.document.querySelector(f'#grid .tile[data-id="{item_id}"]')
        if present(node):
            node.focus()

    # --- actions ---------------------------------------------------------------------------
    async def import_files(self, files) -> None:
        message = by_id("import-message")
        label = by_id("import-label").value or None
        message.textContent = f"Reading {len(files)} file{'s' if len(files) != 1 else ''}…"
        from ..dataset import ImportReport

        report = ImportReport()
        for i, f in enumerate(files):
            path = str(getattr(f, "webkitRelativePath", "") or f.name)
            parts = path.split("/")
            folder = parts[-2] if len(parts) >= 2 else None
            item_label = folder if folder in self.p.classes else label
            report.merge(await self.p.import_files([(path, (await f.arrayBuffer()).to_bytes())], item_label))
            if i % 20 == 19:
                message.textContent = f"Reading {i + 1} of {len(files)} files…"
                await asyncio.sleep(0)
        text = report.summary() + "."
        if report.rejected:
            text += " " + "; ".join(f"{name}: {why}" for name, why in report.rejected[:5])
        message.textContent = text
        for id_ in ("file-input", "folder-input", "camera-input"):
            by_id(id_).value = ""
        self.refresh()

    async def suggest(self) -> None:
        button = by_id("suggest")
        button.disabled = True
        button.textContent = "Asking the model…"
        try:
            ids = await self.p.suggest()
        finally:
            button.disabled = False
            button.textContent = "Suggest labels"
        by_id("suggest-message").textContent = suggestion_note(self.p.version, len(ids))
        self.filter = "suggested"
        by_id("filter").value = "suggested"
        self.refresh()

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

        if not js.confirm("Delete all your images and labels from this device?"):
            return
        await self.ds.clear()
        self.refresh()

    async def train(self) -> None:
        start, stop = by_id("train-button"), by_id("cancel")
        bar, text, result_box = by_id("train-progress"), by_id("train-text"), by_id("train-result")
        self.cancel = CancelToken()
        start.disabled, stop.hidden, bar.hidden = True, False, False
        result_box.textContent = ""

        from . import charts

        by_id("loss-box").hidden = False
        if self.loss_chart is None:
            self.loss_chart = charts.make(by_id("loss-chart"), "line", ["loss"], "batch", "loss")
        losses: list[float] = []

        async def progress(p: Progress) -> None:
            bar.value = p.fraction
            text.textContent = f"Epoch {p.epoch + 1}/{p.epochs}, batch {p.batch}/{p.batches}, loss {p.loss:.3f}"
            losses.append(round(p.loss, 4))
            if len(losses) % 5 == 1 or p.fraction >= 1:
                charts.set_data(self.loss_chart, list(range(1, len(losses) + 1)), [losses])
            await asyncio.sleep(0)  # let the page breathe between batches

        try:
            text.textContent = "Preparing images…"
            result: RoundResult = await self.p.train_round(progress=progress, cancel=self.cancel)
            ack = result.ack
            fed = ack.get("applied_version")
            if fed is not None:
                result_box.textContent = f"Update sent: it fed into global version {fed}."
            elif ack.get("status") == "discarded":
                result_box.textContent = ("Update received, but not merged: it pulled the shared model away from "
                                          "what the other participants taught it. Check your labels and train again.")
            else:
                result_box.textContent = f"Update sent: it waits for other participants ({ack['status']})."
            text.textContent = f"Done. Final loss {result.epoch_losses[-1]:.3f}."
            _bump("webflRoundsOk")
        except Cancelled:
            text.textContent = "Training cancelled. Nothing was sent."
        except NotEnoughData as exc:
            text.textContent = str(exc)
        except ServerRefused as exc:
            text.textContent = (f"The server did not take this update: {exc.error}. "
                                "Train again to start from the newest model.")
        finally:
            _bump("webflRoundsEnded")  # for automation (experiments), like webflState
            start.disabled, stop.hidden = False, True
            self.cancel = None
            set_status(self.p)
            self.refresh()

    async def test(self) -> None:
        """The global model (and the local one from the last round) on the test images."""
        box = by_id("test-result")
        outcome = await self.p.test()
        if not outcome:
            box.textContent = "No labelled test images yet: about 1 in 5 labelled images is kept for testing."
            return
        results = {}
        if outcome["local"] is not None:
            results["Your last local model"] = outcome["local"]
        results[f"Global model (version {outcome['version']})"] = outcome["global"]
        clear(box)
        for name, result in results.items():
            box.appendChild(el("p", f"{name}: {result['accuracy']:.0%} correct on {result['samples']} test images.",
                               cls="test-accuracy"))
        table = el("table", cls="per-class", id="per-class")
        head = el("tr")
        head.appendChild(el("th", "Class"))
        for name in results:
            head.appendChild(el("th", name.split(" (")[0]))
        table.appendChild(head)
        for i, cls_name in enumerate(self.p.classes):
            row = el("tr")
            row.appendChild(el("td", cls_name))
            for result in results.values():
                acc = result["per_class"][i]
                row.appendChild(el("td", "–" if acc is None else f"{acc:.0%}"))
            table.appendChild(row)
        box.appendChild(table)
        box.appendChild(confusion_table(self.p.classes, list(results.values())[-1]["confusion"]))


def suggestion_note(version: int | None, count: int) -> str:
    """What the participant should know about the suggestions just made, in plain words."""
    if count == 0:
        return "Every image has a label already: nothing to suggest."
    if not version:
        return ("The shared model has not learned from anyone yet, so these suggestions are guesses. "
                "Label a few images of each class by hand first, train, and ask again.")
    return (f"Suggested labels for {count} image{'s' if count != 1 else ''}, from the shared model after "
            f"{version} update{'s' if version != 1 else ''}. Check them: accept the right ones, correct the rest.")


def confusion_table(classes: list[str], confusion: list[list[int]]):
    """Rows: true class, columns: predicted; darker = more images."""
    table = el("table", cls="confusion", id="confusion")
    caption = el("caption", "Confusion matrix of the global model (rows: true class, columns: predicted)")
    table.appendChild(caption)
    head = el("tr")
    head.appendChild(el("th", ""))
    for name in classes:
        head.appendChild(el("th", name))
    table.appendChild(head)
    top = max(1, max(max(r) for r in confusion))
    for name, row_values in zip(classes, confusion):
        row = el("tr")
        row.appendChild(el("th", name))
        for j, n in enumerate(row_values):
            cell = el("td", str(n) if n else "")
            shade = int(235 - 170 * n / top)
            colour = f"rgb({shade},{shade + 10 if shade < 245 else 245},255)" if n else "#fff"
            cell.setAttribute("style", f"background:{colour};text-align:center")
            row.appendChild(cell)
        table.appendChild(row)
    return table


def _bump(counter: str) -> None:
    import js

    data = js.document.documentElement.dataset
    setattr(data, counter, str(int(getattr(data, counter, None) or 0) + 1))


def set_status(p: Participant, connected: bool = True) -> None:
    status = by_id("status")
    version = "–" if p.version is None else str(p.version)
    features = "" if p.features.backend == "none" else f"; features: {p.features.backend}"
    status.textContent = (f"{'Connected' if connected else 'Offline'} · global version {version} · "
                          f"compute: {p.trainer.backend.name}{features}")


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
