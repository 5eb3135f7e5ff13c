"""The admin page: sign in with the admin token, create and edit tasks, watch them learn."""
from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

from ..protocol import ServerRefused
from ..transport import default_transport
from . import charts
from .dom import by_id, clear, download, el, on

TOKEN_KEY = "webfl-admin-token"  # sessionStorage: gone when the tab closes; never a cookie
POLL_SECONDS = 2.0
# an action's message (blocked, downloaded) stays this long before the refresh's header replaces it
SAID_SECONDS = 15.0
# A task's bundle state in words (the list and the task page say the same).
BUNDLE_WORDS = {"ready": "model ready", "building": "preparing the model", "pending": "waiting to prepare the model",
                "failed": "model failed"}
CLIENT_METRICS = {"loss", "epochs", "local_test_accuracy"}  # what every client reports


class AdminAPI:
    """The admin API with the token in a header."""

    def __init__(self, token: str) -> None:
        import js

        self.base = str(js.location.origin)
        self.token = token
        self.transport = default_transport()

    async def call(self, method: str, path: str, body=None, raw: bytes | None = None):
        headers = {"Authorization": f"Bearer {self.token}"}
        data = raw
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        r = await self.transport.request(method, self.base + path, headers, data)
        if not r.ok:
            info = r.json() if r.body.startswith(b"{") else {"error": f"HTTP {r.status}"}
            raise ServerRefused(r.status, info.get("error", "refused"), info.get("detail"))
        return r


class AdminPage:
    def __init__(self, root) -> None:
        self.root = root
        self.api: AdminAPI | None = None
        self.choices: dict = {}
        self.tasks: list[dict] = []
        self.current: dict | None = None
        self.metrics: list[dict] = []
        self.charts: dict = {}
        self._poll: asyncio.Task | None = None
        self._said_at = float("-inf")  # when an action last said something in the status line

    def _say(self, text: str) -> None:
        """Tell the admin what their action did; the periodic refresh leaves it a while."""
        by_id("status").textContent = text
        self._said_at = time.monotonic()

    # --- sign in ----------------------------------------------------------------------
    async def start(self) -> None:
        import js

        token = js.sessionStorage.getItem(TOKEN_KEY)
        if token and await self._try(str(token)):
            return
        self._login_form()

    def _login_form(self, message: str = "") -> None:
        clear(self.root)
        box = el("section", cls="card", id="login")
        box.appendChild(el("h1", "Sign in"))
        box.appendChild(el("p", "Paste the admin token. The server printed it when it started for the first time "
                                "(look for \"admin token\" in its output)."))
        form = el("form", cls="join")
        form.appendChild(el("label", "Admin token", for_="token"))
        form.appendChild(el("input", id="token", type="password", autocomplete="off", required=""))
        form.appendChild(el("button", "Sign in", type="submit", cls="primary", id="sign-in"))
        box.appendChild(form)
        box.appendChild(el("p", message, cls="message", id="login-message", aria_live="polite"))
        self.root.appendChild(box)

        async def submit(e):
            if not await self._try(str(by_id("token").value).strip()):
                by_id("login-message").textContent = "That token was not accepted. Check it and try again."

        on(form, "submit", submit, prevent_default=True)

    async def _try(self, token: str) -> bool:
        import js

        api = AdminAPI(token)
        try:
            self.choices = (await api.call("GET", "/api/admin/choices")).json()
        except ServerRefused:
            js.sessionStorage.removeItem(TOKEN_KEY)
            return False
        js.sessionStorage.setItem(TOKEN_KEY, token)
        self.api = api
        await self.show_list()
        return True

    # --- task list ---------------------------------------------------------------------
    async def show_list(self) -> None:
        self._stop_polling()
        self.tasks = (await self.api.call("GET", "/api/admin/tasks")).json()["tasks"]
        clear(self.root)
        box = el("section", cls="card", id="tasks")
        head = el("div", cls="row")
        head.appendChild(el("h1", "Tasks"))
        new = el("button", "New task", id="new-task", cls="primary", type="button")
        head.appendChild(new)
        box.appendChild(head)
        on(new, "click", lambda e: self.show_form(None))
        if not self.tasks:
            box.appendChild(el("p", "No tasks yet. Create one: pick classes and a model; participants join "
                                    "with the link or QR code it gets.", cls="empty", id="no-tasks"))
        table = el("table", id="task-list")
        on(table, "click", self._on_task_list_click)  # one listener for every row's link
        box.appendChild(table)
        self.root.appendChild(box)
        self._draw_task_list()
        self._poll = asyncio.ensure_future(self._poll_task_list())

    def _draw_task_list(self) -> None:
        table = by_id("task-list")
        clear(table)
        for task in self.tasks:
            row = el("tr", cls="task-row")
            row.setAttribute("data-id", task["id"])
            cell = el("td")
            cell.appendChild(el("a", task["title"], href="#"))
            row.appendChild(cell)
            version = "no model yet" if task["version"] is None else f"version {task['version']}"
            for text in (task["config"]["model"], f"{len(task['config']['classes'])} classes",
                         BUNDLE_WORDS[task["bundle_status"]], version, task["config"]["aggregator"]["name"]):
                row.appendChild(el("td", str(text)))
            table.appendChild(row)
        by_id("status").textContent = f"Signed in · {len(self.tasks)} task{'s' if len(self.tasks) != 1 else ''}"

    async def _on_task_list_click(self, event) -> None:
        link = event.target.closest("a") if event.target is not None else None
        if link is None:
            return
        event.preventDefault()
        await self.show_task(link.closest(".task-row").getAttribute("data-id"))

    async def _poll_task_list(self) -> None:
        """Versions and build states change while the admin looks at the list."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                self.tasks = (await self.api.call("GET", "/api/admin/tasks")).json()["tasks"]
                self._draw_task_list()
            except ServerRefused as exc:
                by_id("status").textContent = f"Could not refresh the list: {exc.error}"

    # --- create / edit ------------------------------------------------------------------
    def show_form(self, task: dict | None) -> None:
        self._stop_polling()
        defaults = self.choices["defaults"]
        config = task["config"] if task else defaults
        clear(self.root)
        box = el("section", cls="card", id="task-form")
        box.appendChild(el("h1", "Edit task" if task else "New task"))
        form = el("form", cls="form")

        def field(name: str, label: str, node, help_text: str = "") -> None:
            wrap = el("div", cls="field")
            wrap.appendChild(el("label", label, for_=name))
            wrap.appendChild(node)
            if help_text:
                wrap.appendChild(el("small", help_text))
            form.appendChild(wrap)

        field("title", "Title", el("input", id="title", value=task["title"] if task else "", required=""))
        field("classes", "Classes", el("input", id="classes", value=", ".join(config.get("classes", [])),
                                        placeholder="cat, dog, bird", required=""),
              "comma-separated, in label order; at least two")
        model = el("select", id="model")
        for m in self.choices["models"]:
            option = el("option", m["name"], value=m["name"])
            if m["name"] == config["model"]:
                option.setAttribute("selected", "")
            model.appendChild(option)
        field("model", "Model", model)
        model_help = el("div", cls="model-help", id="model-help", aria_live="polite")
        form.appendChild(model_help)

        def show_model_help(_=None) -> None:  # the description in full, and advice for this model
            chosen = next(m for m in self.choices["models"] if m["name"] == model.value)
            clear(model_help)
            model_help.appendChild(el("p", chosen["description"][:1].upper() + chosen["description"][1:] + "."))
            if chosen.get("advice"):
                model_help.appendChild(el("p", chosen["advice"], cls="message"))

        show_model_help()
        shown = {"model": str(model.value)}

        def change_model(_=None) -> None:
            """A new model's help; its suggested learning rate unless the admin typed another."""
            show_model_help()
            before = next(m for m in self.choices["models"] if m["name"] == shown["model"])
            after = next(m for m in self.choices["models"] if m["name"] == model.value)
            rate = by_id("lr")
            if rate is not None and after.get("suggested_lr") and (
                    str(rate.value) in ("", str(before.get("suggested_lr")), str(config.get("lr")))):
                rate.value = str(after["suggested_lr"])
            shown["model"] = str(model.value)

        on(model, "change", change_model)
        field("train_blocks", "Trainable blocks", el("input", id="train_blocks", type="number", min="0",
                                                      value=str(config["train_blocks"])),
              "0 trains only the new classifier on features computed once per image (fast); "
              "more blocks adapt more of the network and cost more per step")
        for spec in self.choices["settings"]:  # names, bounds, defaults and help from the server's schema
            value = config.get(spec["name"], spec["default"])
            field(spec["name"], spec["label"], field_input(spec["name"], spec, value), spec["help"])
        agg = el("select", id="aggregator")
        for a in self.choices["aggregators"]:
            option = el("option", a["name"], value=a["name"])
            if a["name"] == config["aggregator"]["name"]:
                option.setAttribute("selected", "")
            agg.appendChild(option)
        field("aggregator", "Aggregator", agg)
        params_box = el("div", id="aggregator-params", cls="params")
        form.appendChild(params_box)

        def render_params(_=None) -> None:
            clear(params_box)
            spec = next(a for a in self.choices["aggregators"] if a["name"] == agg.value)
            current = config["aggregator"] if config["aggregator"]["name"] == spec["name"] else {}
            params_box.appendChild(el("p", f"{spec['summary']} ({spec['paper']})", cls="message", id="aggregator-help"))
            for p in spec["params"]:
                value = current.get(p["name"], p["default"])
                node_id = f"agg-{p['name']}"
                node = field_input(node_id, p, value)
                wrap = el("div", cls="field")
                wrap.appendChild(el("label", p["name"].replace("_", " "), for_=node_id))
                wrap.appendChild(node)
                default = "off" if p["default"] is None else p["default"]
                wrap.appendChild(el("small", f"{p['help']} (paper default: {default})"))
                params_box.appendChild(wrap)

        render_params()
        on(agg, "change", render_params)
        self._form_extensions = config.get("extensions", [])
        form.appendChild(self._extensions_fieldset(config))
        row = el("div", cls="row")
        row.appendChild(el("button", "Save" if task else "Create task", type="submit", cls="primary", id="save-task"))
        cancel = el("button", "Cancel", type="button", id="cancel-form")
        row.appendChild(cancel)
        form.appendChild(row)
        form.appendChild(el("p", "", cls="message error-text", id="form-message", aria_live="polite"))
        box.appendChild(form)
        self.root.appendChild(box)
        on(cancel, "click", lambda e: self.show_list() if task is None else self.show_task(task["id"]))

        async def submit(e):
            body = {"title": str(by_id("title").value), "config": self._read_form(agg.value)}
            try:
                if task is None:
                    saved = (await self.api.call("POST", "/api/admin/tasks", body)).json()
                else:
                    saved = (await self.api.call("PATCH", f"/api/admin/tasks/{task['id']}", body)).json()
            except ServerRefused as exc:
                by_id("form-message").textContent = f"Not saved: {exc.error}"
                return
            await self.show_task(saved["id"])

        on(form, "submit", submit, prevent_default=True)

    def _extensions_fieldset(self, config: dict):
        """Extensions the server offers, each with its parameters (from its __init__)."""
        box = el("fieldset", cls="params", id="extensions-choice")
        box.appendChild(el("legend", "Extensions: code that runs on every participant's device. "
                                     "Choose only code you have read and trust."))
        chosen = {e["name"]: e for e in config.get("extensions", [])}
        if not self.choices.get("extensions"):
            box.appendChild(el("p", "No extensions are installed on this server.", cls="message"))
        for ext in self.choices.get("extensions", []):
            wrap = el("div", cls="field")
            toggle = el("input", type="checkbox", id=f"ext-{ext['name']}")
            toggle.checked = ext["name"] in chosen
            wrap.appendChild(toggle)
            wrap.appendChild(el("label", ext["title"], for_=f"ext-{ext['name']}"))
            if ext["description"]:
                wrap.appendChild(el("small", ext["description"]))
            for p in ext["params"]:
                value = chosen.get(ext["name"], {}).get("params", {}).get(p["name"], p["default"])
                node_id = f"ext-{ext['name']}-{p['name']}"
                row = el("div", cls="field")
                row.appendChild(el("label", p["name"].replace("_", " "), for_=node_id))
                row.appendChild(field_input(node_id, p, value))
                wrap.appendChild(row)
            box.appendChild(wrap)
        return box

    def _read_extensions(self, current: list[dict]) -> list[dict]:
        """The checked extensions with their parameters: already chosen ones keep their order."""
        offered = {e["name"]: e for e in self.choices.get("extensions", [])}
        order = [e["name"] for e in current if e["name"] in offered]
        order += [n for n in offered if n not in order]
        out = []
        for name in order:
            if not by_id(f"ext-{name}").checked:
                continue
            params = {}
            for p in offered[name]["params"]:
                value = read_field(f"ext-{name}-{p['name']}", p)
                if value is not None:
                    params[p["name"]] = value
            out.append({"name": name, "params": params})
        return out

    def _read_form(self, aggregator: str) -> dict:
        config = {"classes": [c.strip() for c in str(by_id("classes").value).split(",") if c.strip()],
                  "model": str(by_id("model").value),
                  "train_blocks": read_field("train_blocks", {"kind": "int"})}
        for spec in self.choices["settings"]:
            config[spec["name"]] = read_field(spec["name"], spec)
        spec = next(a for a in self.choices["aggregators"] if a["name"] == aggregator)
        agg = {"name": aggregator}
        for p in spec["params"]:
            value = read_field(f"agg-{p['name']}", p)
            if value is not None:  # empty: the declared default
                agg[p["name"]] = value
        config["aggregator"] = agg
        config["extensions"] = self._read_extensions(self._form_extensions)
        return config

    # --- one task -------------------------------------------------------------------------
    async def show_task(self, task_id: str) -> None:
        import js

        self._stop_polling()
        task = (await self.api.call("GET", f"/api/admin/tasks/{task_id}")).json()
        self.current = task
        self.metrics = []
        clear(self.root)
        box = el("section", cls="card", id="task-detail")
        back = el("a", "← All tasks", href="#", id="back")
        on(back, "click", lambda e: (e.preventDefault(), asyncio.ensure_future(self.show_list())))
        box.appendChild(back)
        box.appendChild(el("h1", task["title"]))
        link = f"{js.location.origin}/?join={task['join_code']}"
        share = el("div", cls="share")
        share.appendChild(el("img", src=f"/api/join/{task['join_code']}/qr.svg", alt="QR code of the join link",
                             id="qr", width="180", height="180"))
        info = el("div")
        info.appendChild(el("p", "Participants join with this link or QR code:"))
        info.appendChild(el("a", link, href=link, id="join-link", target="_blank"))
        info.appendChild(el("p", f"Join code {task['join_code']}", id="join-code"))
        info.appendChild(el("p", "", id="bundle-status"))
        share.appendChild(info)
        box.appendChild(share)
        c = task["config"]
        summary = (f"{c['model']} ({c['train_blocks']} trainable blocks) · classes {', '.join(c['classes'])} · "
                   f"lr {c['lr']} · batch {c['batch_size']} · {c['local_epochs']} local epochs · "
                   f"{c['aggregator']['name']}")
        box.appendChild(el("p", summary, id="task-summary", cls="message"))
        row = el("div", cls="row")
        edit = el("button", "Edit", type="button", id="edit-task")
        onnx = el("button", "Download ONNX", type="button", id="download-onnx")
        torch = el("button", "Download PyTorch", type="button", id="download-pytorch")
        for b in (edit, onnx, torch):
            row.appendChild(b)
        box.appendChild(row)
        on(edit, "click", lambda e: self.show_form(self.current))
        on(onnx, "click", lambda e: self._download("onnx"))
        on(torch, "click", lambda e: self._download("pytorch"))
        upload = el("div", cls="row")
        upload.appendChild(el("label", "Validation set (zip with a folder per class, or .npz):", for_="validation"))
        picker = el("input", id="validation", type="file", accept=".zip,.npz")
        upload.appendChild(picker)
        box.appendChild(upload)
        box.appendChild(el("p", "Upload a validation set to see accuracy for every new version."
                            if not task["has_validation_set"] else "A validation set is in place.",
                           cls="message", id="validation-message", aria_live="polite"))
        on(picker, "change", lambda e: self._upload(e.target.files.item(0)))
        rotate = el("button", "New join code", type="button", id="rotate-code")
        on(rotate, "click", lambda e: self._rotate_code())
        box.appendChild(rotate)
        self.root.appendChild(box)
        self.root.appendChild(self._participants_panel())
        if c.get("user_study"):
            self.root.appendChild(self._study_panel())
        self.root.appendChild(self._dashboard())  # attached first: Chart.js measures its canvas
        self._make_charts()
        self._update_header()
        js.window.scrollTo(0, 0)  # the join link, QR code and build state first, not the charts
        self._poll = asyncio.ensure_future(self._poll_metrics(task_id))

    def _study_panel(self):
        """A user study: how many agreed to be recorded, and the log as CSV or JSON Lines."""
        box = el("section", cls="card", id="study")
        box.appendChild(el("h2", "User study"))
        box.appendChild(el("p", "Nobody has answered the study notice yet.", id="study-summary", aria_live="polite"))
        row = el("div", cls="row")
        for fmt, label in (("csv", "Download the log (CSV)"), ("jsonl", "Download the log (JSON Lines)")):
            button = el("button", label, type="button", id=f"study-export-{fmt}")
            on(button, "click", lambda e, fmt=fmt: self._export_study(fmt))
            row.appendChild(button)
        box.appendChild(row)
        box.appendChild(el("p", "Each row is one action with its time, the participant's code (not their name) and "
                                "the model version they had. Images are never recorded.", cls="message"))
        return box

    def _draw_study(self, summary: dict) -> None:
        node = by_id("study-summary")
        if node is None:
            return
        answered = summary["agreed"] + summary["declined"]
        if not answered:
            node.textContent = "Nobody has answered the study notice yet."
            return
        people = lambda n: f"{n} participant{'s' if n != 1 else ''}"  # noqa: E731
        node.textContent = (f"{people(summary['agreed'])} agreed to be recorded, {summary['declined']} declined; "
                            f"{summary['events']} action{'s' if summary['events'] != 1 else ''} recorded.")

    async def _export_study(self, fmt: str) -> None:
        t = self.current
        r = await self.api.call("GET", f"/api/admin/tasks/{t['id']}/study/export?format={fmt}")
        name = f"webfl-study-{t['id']}.{fmt}"
        download(name, r.body, "text/csv" if fmt == "csv" else "application/x-ndjson")
        self._say(f"Downloaded {name}")

    def _participants_panel(self):
        box = el("section", cls="card", id="participants")
        box.appendChild(el("h2", "Participants"))
        box.appendChild(el("p", "Nobody has joined yet: share the link or QR code above.", cls="empty",
                           id="participants-empty"))
        table = el("table", id="participants-table", cls="table")
        on(table, "click", self._on_participants_click)  # one listener for every row's button
        box.appendChild(table)
        return box

    def _draw_participants(self, listing: dict) -> None:
        table = by_id("participants-table")
        if table is None:
            return
        clear(table)
        people = listing["clients"]
        by_id("participants-empty").hidden = bool(people)
        if not people:
            return
        head = el("tr")
        for title in ("Name", "Updates merged", "Waiting", "Refused or dropped", "Images claimed", ""):
            head.appendChild(el("th", title))
        table.appendChild(head)
        for c in people:
            row = el("tr", id=f"participant-{c['id']}")
            for value in (c["name"], c["updates"], c["pending"], c["discarded"] + c["quarantined"], c["samples_claimed"]):
                row.appendChild(el("td", str(value)))
            cell = el("td")
            if c["blocked"] is not None:
                cell.appendChild(el("span", "Blocked", cls="message"))
            else:
                button = el("button", "Block", type="button", id=f"block-{c['id']}",
                            aria_label=f"Block {c['name']}")
                button.setAttribute("data-client", c["id"])
                button.setAttribute("data-name", c["name"])
                cell.appendChild(button)
            row.appendChild(cell)
            table.appendChild(row)

    async def _on_participants_click(self, event) -> None:
        from .dom import present

        button = event.target.closest("button[data-client]") if present(event.target) else None
        if present(button):
            await self._block({"id": button.getAttribute("data-client"), "name": button.getAttribute("data-name")})

    async def _block(self, client: dict) -> None:
        import js

        if not js.window.confirm(f"Block {client['name']}? Their updates stop counting at once and their "
                                 "waiting updates are dropped. This cannot be undone."):
            return
        t = self.current
        result = (await self.api.call("POST", f"/api/admin/tasks/{t['id']}/clients/{client['id']}/block")).json()
        dropped = result["pending_updates_dropped"]
        self._say(f"Blocked {client['name']}"
                  + (f"; {dropped} waiting update{'s' if dropped != 1 else ''} dropped" if dropped else ""))
        self._draw_participants((await self.api.call("GET", f"/api/admin/tasks/{t['id']}/clients")).json())

    async def _rotate_code(self) -> None:
        import js

        if not js.window.confirm("Make a new join code? The current link and QR code stop working; "
                                 "people who already joined keep taking part."):
            return
        await self.api.call("POST", f"/api/admin/tasks/{self.current['id']}/join-code")
        await self.show_task(self.current["id"])

    def _update_header(self) -> None:
        t = self.current
        status = by_id("bundle-status")
        if status is not None:
            text = {"ready": "Model ready.", "building": "Preparing the model for participants…",
                    "pending": "Waiting to prepare the model…",
                    "failed": f"Preparing the model failed: {t.get('bundle_error')}"}[t["bundle_status"]]
            status.textContent = text
        version = ("the model is being prepared" if t["version"] is None else f"global version {t['version']}")
        if time.monotonic() - self._said_at > SAID_SECONDS:
            by_id("status").textContent = f"Signed in · {t['title']} · {version}"

    def _dashboard(self):
        box = el("section", cls="card", id="dashboard")
        box.appendChild(el("h2", "Progress"))
        box.appendChild(el("p", "", id="dashboard-summary", cls="message"))
        box.appendChild(el("p", "Nothing yet: versions appear here as participants send updates.",
                           cls="empty", id="dashboard-empty"))
        grid = el("div", cls="charts")
        specs = (
            ("chart-versions", "Global version over time", "line", ["version"], "seconds since the first version", "version", None),
            ("chart-accuracy", "Validation accuracy and loss", "line", ["accuracy", "loss"], "version", "accuracy", "loss"),
            ("chart-clients", "Contributions per participant", "bar", ["updates"], "participant", "updates", None),
            ("chart-staleness", "Staleness of merged updates", "bar", ["updates"], "staleness (versions)", "updates", None),
            ("chart-weights", "Mixing weight per update", "line", ["weight"], "version", "weight", None),
        )
        for id_, title, *_ in specs:
            fig = el("figure", cls="chart")
            fig.appendChild(el("figcaption", title))
            holder = el("div", cls="chart-box")
            holder.appendChild(el("canvas", id=id_, role="img", aria_label=title))
            fig.appendChild(holder)
            grid.appendChild(fig)
        self._chart_specs = specs
        box.appendChild(grid)
        box.appendChild(el("h3", "What extensions report"))
        box.appendChild(el("p", "Numbers the task's extensions add to each update appear here.", cls="empty",
                           id="extension-metrics-empty"))
        box.appendChild(el("table", cls="table", id="extension-metrics"))
        return box

    def _make_charts(self) -> None:
        self.charts = {id_: charts.make(by_id(id_), kind, series, xt, yt, y2, linear_x=id_ == "chart-versions",
                                        whole_y=yt in ("version", "updates"))
                       for id_, _, kind, series, xt, yt, y2 in self._chart_specs}

    def _draw(self) -> None:
        versions = self.metrics
        if not versions:
            return
        by_id("dashboard-empty").hidden = any(v["updates"] for v in versions)
        t0 = versions[0]["created"]
        charts.set_data(self.charts["chart-versions"], [round(v["created"] - t0, 1) for v in versions],
                        [[v["version"] for v in versions]])
        evaluated = [v for v in versions if v["evaluation"]]
        caption = by_id("chart-accuracy").closest("figure").querySelector("figcaption")
        if evaluated:
            caption.textContent = "Validation accuracy and loss"
            charts.set_data(self.charts["chart-accuracy"], [v["version"] for v in evaluated],
                            [[round(v["evaluation"]["accuracy"], 4) for v in evaluated],
                             [round(v["evaluation"]["loss"], 4) for v in evaluated]])
        else:  # no validation set: what the participants measured on their own test images
            reported = participant_reported(versions)
            caption.textContent = ("Participants' own test accuracy and training loss (no validation set: "
                                   "upload one for a common yardstick)")
            charts.set_data(self.charts["chart-accuracy"], [r["version"] for r in reported],
                            [[r["accuracy"] for r in reported], [r["loss"] for r in reported]])
        updates = [(v["version"], u) for v in versions for u in v["updates"]]
        per_client = Counter(u["client"] for _, u in updates)
        charts.set_data(self.charts["chart-clients"], list(per_client), [list(per_client.values())])
        staleness = Counter(u["staleness"] for _, u in updates)
        keys = list(range(0, max(staleness) + 1)) if staleness else []
        charts.set_data(self.charts["chart-staleness"], keys, [[staleness.get(k, 0) for k in keys]])
        charts.set_data(self.charts["chart-weights"], [v for v, _ in updates], [[round(u["weight"], 4) for _, u in updates]])
        last = versions[-1]
        acc = f", validation accuracy {evaluated[-1]['evaluation']['accuracy']:.1%}" if evaluated else ""
        reported = [] if evaluated else participant_reported(versions)
        if reported:
            acc = f", participants report {reported[-1]['accuracy']:.0%} on their own test images"
        self._draw_extension_metrics([u for _, u in updates])
        by_id("dashboard-summary").textContent = (f"Version {last['version']} · {len(updates)} updates merged from "
                                                  f"{len(per_client)} participant{'s' if len(per_client) != 1 else ''}{acc}")

    def _draw_extension_metrics(self, updates: list[dict]) -> None:
        """The latest value of each number extensions report (the client's own metrics left out)."""
        latest: dict[str, float] = {}
        reports: Counter = Counter()
        for u in updates:
            for key, value in u["metrics"].items():
                if key not in CLIENT_METRICS:
                    latest[key] = value
                    reports[key] += 1
        table = by_id("extension-metrics")
        if table is None:
            return
        clear(table)
        by_id("extension-metrics-empty").hidden = bool(latest)
        if not latest:
            return
        head = el("tr")
        for title in ("Reported", "Latest value", "Updates reporting it"):
            head.appendChild(el("th", title))
        table.appendChild(head)
        for key in sorted(latest):
            row = el("tr")
            for text in (key, f"{latest[key]:.4g}", str(reports[key])):
                row.appendChild(el("td", text))
            table.appendChild(row)

    async def _poll_metrics(self, task_id: str) -> None:
        """Every few seconds: new versions, and the last few again (their evaluations come later)."""
        while True:
            try:
                since = max(-1, self.metrics[-1]["version"] - 20) if self.metrics else -1
                self.current = (await self.api.call("GET", f"/api/admin/tasks/{task_id}")).json()
                fresh = (await self.api.call("GET", f"/api/tasks/{task_id}/metrics?since={since}")).json()["versions"]
                self.metrics = [v for v in self.metrics if v["version"] <= since] + fresh
                self._draw_participants((await self.api.call("GET", f"/api/admin/tasks/{task_id}/clients")).json())
                if self.current["config"].get("user_study"):
                    self._draw_study((await self.api.call("GET", f"/api/admin/tasks/{task_id}/study")).json())
                self._update_header()
                self._draw()
            except ServerRefused as exc:
                if self.current and self.current["bundle_status"] != "ready":
                    self._update_header()  # no model yet while it is prepared: not an error
                else:
                    by_id("status").textContent = f"Could not refresh: {exc.error}"
            await asyncio.sleep(POLL_SECONDS)

    def _stop_polling(self) -> None:
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None
        for chart in self.charts.values():
            chart.destroy()
        self.charts = {}

    async def _download(self, fmt: str) -> None:
        t = self.current
        r = await self.api.call("GET", f"/api/admin/tasks/{t['id']}/download?format={fmt}")
        name = f"webfl-{t['id']}-v{r.headers.get('x-webfl-version', '')}.{'onnx' if fmt == 'onnx' else 'pt'}"
        download(name, r.body, "application/octet-stream")
        self._say(f"Downloaded {name}")

    async def _upload(self, file) -> None:
        message = by_id("validation-message")
        if file is None:
            return
        message.textContent = f"Uploading {file.name}…"
        data = (await file.arrayBuffer()).to_bytes()
        try:
            summary = (await self.api.call("PUT", f"/api/admin/tasks/{self.current['id']}/validation", raw=data)).json()
        except ServerRefused as exc:
            message.textContent = f"Not accepted: {exc.error}"
            return
        message.textContent = f"Validation set in place: {summary['samples']} images. Every new version is evaluated."


def participant_reported(versions: list[dict]) -> list[dict]:
    """Per version, the participants' own test accuracy (weighted by the images each update
    counted) and mean training loss, from the metrics every update carries."""
    out = []
    for v in versions:
        rows = [(u["metrics"].get("local_test_accuracy"), u["metrics"].get("loss"), u.get("samples") or 1)
                for u in v["updates"] if u.get("metrics")]
        rated = [(a, n) for a, _, n in rows if a is not None]
        if not rated:
            continue
        losses = [loss for _, loss, _ in rows if loss is not None]
        out.append({"version": v["version"],
                    "accuracy": round(sum(a * n for a, n in rated) / sum(n for _, n in rated), 4),
                    "loss": round(sum(losses) / len(losses), 4) if losses else None})
    return out


def field_input(node_id: str, spec: dict, value):
    """The control for one declared field (``server.forms``): a menu, a checkbox, or a number
    input with the declared bounds (the server still validates everything)."""
    if spec["kind"] == "choice":
        node = el("select", id=node_id)
        for choice in spec["choices"]:
            option = el("option", choice, value=choice)
            if choice == value:
                option.setAttribute("selected", "")
            node.appendChild(option)
        return node
    if spec["kind"] == "bool":
        node = el("input", id=node_id, type="checkbox")
        node.checked = bool(value)
        return node
    if spec["kind"] == "longtext":
        node = el("textarea", id=node_id, rows="5")
        node.value = "" if value is None else str(value)
        return node
    if spec["kind"] in ("text", "any"):
        return el("input", id=node_id, type="text", value="" if value is None else str(value))
    return number_input(node_id, spec, value)


def read_field(node_id: str, spec: dict):
    """The value of a control made by :func:`field_input` (None for an empty number)."""
    node = by_id(node_id)
    if spec["kind"] == "choice":
        return str(node.value)
    if spec["kind"] == "bool":
        return bool(node.checked)
    raw = str(node.value).strip()
    if spec["kind"] in ("text", "longtext", "any"):
        return raw if raw or not spec.get("optional") else None
    if raw == "":
        return None
    try:
        return int(raw) if spec["kind"] == "int" else float(raw)
    except ValueError:
        return raw  # the server names the field and what it takes


def number_input(node_id: str, spec: dict, value):
    """A number field with the bounds the server declares (it still validates everything)."""
    attrs = {"id": node_id, "type": "number", "step": "any" if spec["kind"] == "number" else "1",
             "value": "" if value is None else str(value), "placeholder": "off" if spec.get("optional") else ""}
    if "min" in spec and not spec.get("min_exclusive"):
        attrs["min"] = str(spec["min"])
    if "max" in spec and not spec.get("max_exclusive"):
        attrs["max"] = str(spec["max"])
    return el("input", **attrs)


async def main() -> None:
    page = AdminPage(by_id("app"))
    by_id("loading").hidden = True
    await page.start()
    globals()["page"] = page
