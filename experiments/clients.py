"""The participants of an experiment: browser tabs driven through the real page, and
CPython clients running the same client code. Both take their data through the import
path a person uses (files in the ImageFolder layout)."""
from __future__ import annotations

import asyncio
import io
import shutil
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from browser_py.extensions import Extension
from .headless import Reviewer, import_labelled

from .config import Dropout


def folder_zip(files: list[tuple[str, bytes, str]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data, _ in files:
            zf.writestr(f"data/{name}", data)
    return buf.getvalue()


class TabHost:
    """One headless Chromium whose tabs are participants: each tab has its own storage slot
    (``?slot=``), and background tabs keep full-speed timers (the flags in
    :func:`experiments.browser.chrome_options`). Selenium talks to one tab at a time, so
    each participant focuses its tab before it acts."""

    def __init__(self) -> None:
        from .browser import start_chrome

        self.workdir = Path(tempfile.mkdtemp(prefix="webfl-tabs-"))
        self.driver = start_chrome(str(self.workdir / "profile"))
        self.driver.set_script_timeout(120)
        self._first = self.driver.current_window_handle
        self._focused: str | None = None

    def new_tab(self) -> str:
        if self._first is not None:  # the window Chromium opened with is the first tab
            handle, self._first = self._first, None
        else:
            self.driver.switch_to.new_window("tab")
            handle = self.driver.current_window_handle
        self._focused = handle
        return handle

    def focus(self, handle: str):
        if self._focused != handle:
            self.driver.switch_to.window(handle)
            self._focused = handle
        return self.driver

    def quit(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.workdir, ignore_errors=True)


class BrowserClient:
    """One participant clicking the page's buttons: in its own headless Chromium profile,
    or in a tab of a shared one (``host``)."""

    kind = "browser"

    def __init__(self, index: int, url: str, code: str, files, slowdown: float, drops: list[Dropout],
                 host: TabHost | None = None) -> None:
        self.index, self.url, self.code, self.slowdown = index, url, code, slowdown
        self.host = host
        self.handle: str | None = None
        self.drops = drops
        self.workdir = Path(tempfile.mkdtemp(prefix=f"webfl-exp-{index}-"))
        self.zip_path = self.workdir / "data.zip"
        self.zip_path.write_bytes(folder_zip(files))
        self.driver = None
        self.clicked = 0
        self.next_allowed = 0.0
        self.away_until = 0.0
        self.error: str | None = None
        self.events: list[tuple[str, float]] = []  # ("left" | "back", seconds into the run)

    def _page(self) -> str:
        return f"{self.url}/?join={self.code}&slot=client-{self.index}&name=browser-{self.index}"

    @property
    def driver(self):
        """This participant's page (its tab focused, when it shares a browser)."""
        if self.host is not None and self.handle is not None:
            return self.host.focus(self.handle)
        return self._driver

    @driver.setter
    def driver(self, value) -> None:
        self._driver = value

    def start(self) -> None:
        from .browser import start_chrome, wait_state

        if self.host is not None:
            self.handle = self.host.new_tab()
        else:
            self.driver = start_chrome(str(self.workdir / "profile"))
            self.driver.set_script_timeout(120)
        self.driver.get(self._page())
        if wait_state(self.driver) != "ready":
            raise RuntimeError(f"browser client {self.index}: page did not start: "
                               f"{self.driver.execute_script('return document.documentElement.dataset.webflError')}")
        # a task with extensions asks to join; a user study asks for agreement (this simulated
        # participant says yes): click through until the task page is there
        from selenium.common.exceptions import WebDriverException

        deadline = time.monotonic() + 120
        while not self.driver.find_elements("id", "file-input"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"browser client {self.index}: the page did not open after joining")
            for button_id in ("join-confirm-button", "study-agree"):
                for button in self.driver.find_elements("id", button_id):
                    try:
                        button.click()  # a second click on the same card is ignored by the page
                    except WebDriverException:
                        pass  # the card went away meanwhile
            time.sleep(0.3)
        self.driver.find_element("id", "file-input").send_keys(str(self.zip_path))
        deadline = time.monotonic() + 300
        while "added" not in self.driver.find_element("id", "import-message").text:
            if time.monotonic() > deadline:
                raise RuntimeError(f"browser client {self.index}: import did not finish")
            time.sleep(0.3)

    def _counter(self, name: str) -> int:
        return int(self.driver.execute_script(f"return document.documentElement.dataset.{name} || '0'"))

    def poll(self, elapsed: float) -> None:
        """Advance this tab: leave or rejoin on schedule, start a round when the last one ended."""
        from .browser import wait_state

        for drop in self.drops:
            if drop.at <= elapsed < drop.at + drop.duration and self.away_until == 0.0:
                self.driver.get("about:blank")  # the participant closes the tab
                self.away_until = drop.at + drop.duration
                self.events.append(("left", round(elapsed, 1)))
                return
        if self.away_until:
            if elapsed < self.away_until:
                return
            self.away_until = 0.0
            self.driver.get(self._page())  # comes back: IndexedDB keeps data and membership
            state = wait_state(self.driver)
            if state != "ready":
                raise RuntimeError(f"browser client {self.index}: the page did not come back after leaving "
                                   f"({state}: {self.driver.execute_script('return document.documentElement.dataset.webflError')})")
            self.events.append(("back", round(elapsed, 1)))
            self.clicked = 0
            self.next_allowed = elapsed + self.slowdown
            return
        ended = self._counter("webflRoundsEnded")
        if ended < self.clicked:
            return  # a round is running
        if elapsed < self.next_allowed:
            return
        button = self.driver.find_element("id", "train-button")
        if button.is_enabled():
            button.click()
            self.clicked = ended + 1
            self.next_allowed = elapsed + self.slowdown

    def stop(self) -> None:
        if self.host is not None:
            return  # the tab goes with its browser (TabHost.quit)
        if self._driver is not None:
            self._driver.quit()
            self._driver = None


class PythonClient:
    """One participant in CPython, in its own thread with its own event loop."""

    kind = "cpython"

    def __init__(self, index: int, url: str, code: str, files, slowdown: float, drops: list[Dropout]) -> None:
        self.index, self.url, self.code, self.files, self.slowdown, self.drops = index, url, code, files, slowdown, drops
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.events: list[tuple[str, float]] = []
        self.error: str | None = None
        self.t0 = time.monotonic()
        from browser_py.trainer import CancelToken

        self.cancel = CancelToken()  # stop() ends a long local round at the next batch
        self.reviewer: Reviewer | None = None
        self.review_per_round = 20

    def start(self) -> None:
        from browser_py.participant import Participant
        from browser_py.protocol import FLClient
        from browser_py.stores import MemoryStore

        self.store = MemoryStore()
        self.participant = Participant(FLClient(self.url, self.store), self.store)

        async def setup():
            await self.participant.start(self.code, name=f"cpython-{self.index}")
            if self.participant.study.enabled:  # a user study: a simulated person labels as it goes
                need = int(self.participant.task["training"]["min_labelled"])
                self.reviewer = Reviewer(self.participant, self.files, max(need, 20), self.review_per_round)
                await self.reviewer.import_files()
            else:
                await import_labelled(self.participant, self.files)

        asyncio.run(setup())
        if getattr(self, "poison", None) is not None:
            # a local extension instance, through the same public hook a served one uses
            self.participant.hooks.extensions.append(PoisonUpdates(self.poison, self.index))

    def begin(self, t0: float) -> None:
        self.t0 = t0
        self.thread = threading.Thread(target=lambda: asyncio.run(self._loop()), daemon=True)
        self.thread.start()

    async def _loop(self) -> None:
        from browser_py.protocol import ServerRefused
        from browser_py.trainer import Cancelled

        while not self.stop_event.is_set():
            elapsed = time.monotonic() - self.t0
            away = [d for d in self.drops if d.at <= elapsed < d.at + d.duration]
            if away:
                if not self.events or self.events[-1][0] != "left":
                    self.events.append(("left", round(elapsed, 1)))
                await asyncio.sleep(0.2)
                continue
            if self.events and self.events[-1][0] == "left":
                self.events.append(("back", round(elapsed, 1)))
            try:
                if self.reviewer is not None:
                    await self.reviewer.review()
                result = await self.participant.train_round(cancel=self.cancel)
                if result.ack.get("status") == "buffered":
                    # our update waits in a FedBuff buffer or FedAvg round: the server takes one
                    # per participant, so wait for the model to move before training again
                    await self._wait_for_version_after(result.ack["current_version"])
            except ServerRefused:
                await asyncio.sleep(0.2)  # e.g. a round closed meanwhile: start again from the newest model
                continue
            except Cancelled:
                return
            except Exception as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                return
            if self.slowdown:
                self.stop_event.wait(self.slowdown)

    async def _wait_for_version_after(self, version: int, limit: float = 900.0) -> None:
        # generous: a synchronous round waits for the slowest participant's local epochs
        deadline = time.monotonic() + limit
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            if await self.participant.client.current_version() > version:
                return
            await asyncio.sleep(0.2)

    def poll(self, elapsed: float) -> None:
        pass

    def stop(self) -> None:
        self.stop_event.set()
        self.cancel.cancel()
        if self.thread is not None:
            self.thread.join(120)
        if self.participant.study.pending:
            asyncio.run(self.participant.study.flush())  # the last actions, as a page would send them


class PoisonUpdates(Extension):
    """A misbehaving participant for robustness experiments (never served to real clients)."""

    name = "poison"

    def __init__(self, poison, seed: int) -> None:
        import random

        super().__init__()
        self.poison = poison
        self.rng = random.Random(seed)

    def before_send(self, ctx, update):
        from array import array

        if self.poison.kind == "scale":
            f = self.poison.factor
            update.params = array("f", (b + f * (p - b) for p, b in zip(update.params, update.base)))
        else:
            update.params = array("f", (self.rng.gauss(0.0, self.poison.factor) for _ in update.params))
        return update
