"""Offline after the first visit, in headless Chromium against a server that goes away and
comes back: the page loads, labels and trains without it; the update waits on the device,
visibly, and is sent when the server answers again. And a server that asks to wait (429):
the page says so in plain words, counts the wait down, and goes on when it is over."""
from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By

from client_helpers import digit_files, image_folder_zip
from live import ARTIFACTS, LiveServer, wait_ready
from test_ui import text, until

pytestmark = pytest.mark.browser


# Counts the page's tries to send an update, and notes the count when the page is ready
# (injected before the page's own scripts).
COUNT_SENDS = """window.sends = 0;
const pageFetch = window.fetch;
window.fetch = (input, init) => {
  if (String(input.url || input).endsWith("/updates") && init && init.method === "POST") window.sends += 1;
  return pageFetch(input, init);
};
document.addEventListener("DOMContentLoaded", () => new MutationObserver((_, seen) => {
  if (document.documentElement.dataset.webflState === "ready") {
    window.sendsAtReady = window.sends;  // before the page's next task: its background try comes after
    seen.disconnect();
  }
}).observe(document.documentElement, {attributes: true, attributeFilter: ["data-webfl-state"]}));"""


def join_with_30_digits(browser, server, task: dict, tmp_path) -> None:
    """Open the task's join link and add 30 labelled digits."""
    browser.get(f"{server.url}/?join={task['join_code']}")
    assert wait_ready(browser) == "ready"
    archive = tmp_path / "digits.zip"
    archive.write_bytes(image_folder_zip(digit_files(30, offset=350)))
    browser.find_element(By.ID, "file-input").send_keys(str(archive))
    until(browser, lambda d: "30 images added" in text(d, "import-message"))


def test_the_page_works_offline_and_sends_the_waiting_update_when_back(browser, tmp_path):
    server = LiveServer(tmp_path / "server")  # its own server: this test stops and restarts it
    try:
        task = server.create_task("Digits offline", classes=[str(d) for d in range(10)], min_labelled=10,
                                  batch_size=8, local_epochs=1)
        join_with_30_digits(browser, server, task, tmp_path)
        # the next visit runs under the service worker, which keeps a copy of what the page loads
        browser.refresh()
        assert wait_ready(browser) == "ready"
        until(browser, lambda d: d.execute_script("return !!navigator.serviceWorker.controller"), 30)
        browser.refresh()
        assert wait_ready(browser) == "ready"
        server.stop()
        browser.refresh()
        assert wait_ready(browser) == "ready", browser.execute_script(
            "return document.documentElement.dataset.webflError")
        assert text(browser, "count-summary").startswith("30 images: 30 labelled")
        browser.find_element(By.ID, "train-button").click()
        until(browser, lambda d: "Saved on this device" in text(d, "train-result"), 180)
        assert "waiting to send" in text(browser, "status") and "No connection" in text(browser, "status")
        assert "waits on this device" in text(browser, "next-hint")  # in view, whatever the scroll
        (ARTIFACTS / "experience").mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "experience" / "desktop-11-offline-waiting.png"))
        # a reload while the update waits: the page tries to send it once and gets ready (trying
        # for the page's 30 s patience first held a reload ~30 s here, against ~1 s)
        browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": COUNT_SENDS})
        browser.refresh()
        assert wait_ready(browser) == "ready"
        assert browser.execute_script("return window.sendsAtReady") == 1
        until(browser, lambda d: "No connection" in text(d, "status") and "waiting to send" in text(d, "status"), 15)
        server.start()
        until(browser, lambda d: "Sent now that the connection is back" in text(d, "train-result"), 120)
        assert server.api("GET", f"/api/tasks/{task['id']}")["version"] == 1
        assert "waiting" not in text(browser, "status") and text(browser, "status").startswith("Online")
        assert "waits on this device" not in text(browser, "next-hint")
    finally:
        server.stop()


def test_a_server_asking_to_wait_is_named_and_the_update_waits_for_it(browser, live_server, tmp_path):
    """Past the task's updates per minute the server answers 429 with a wait (~60 s). A page
    that waits that long counts it down and can stop waiting (the update is kept); with the
    page's own patience (30 s) the round ends at once saying so in plain words (not "no
    connection"), and the update waits on the device while the page keeps saying it is online."""
    task = live_server.create_task("Digits rate", classes=[str(d) for d in range(10)], min_labelled=10,
                                   batch_size=8, local_epochs=1, max_updates_per_minute=1, max_change_ratio=None,
                                   max_change_vs_recent=None, direction_guard=False)
    join_with_30_digits(browser, live_server, task, tmp_path)
    browser.find_element(By.ID, "train-button").click()
    until(browser, lambda d: "learned from your" in text(d, "train-result"), 120)

    patience = "import browser_py.app as app; app.participant.client.retry_seconds = {}"
    browser.execute_script("window.webfl.pyodide.runPython(arguments[0])", patience.format(120))
    browser.find_element(By.ID, "train-button").click()
    until(browser, lambda d: "Trying again in" in text(d, "train-text"), 60)
    assert text(browser, "train-text").startswith(
        "The server asked to wait: this task accepts 1 update per minute from one participant.")
    stop = browser.find_element(By.ID, "cancel")
    assert stop.text == "Stop waiting"
    stop.click()
    until(browser, lambda d: "Stopped waiting" in text(d, "train-result"), 10)
    assert "kept on this device" in text(browser, "train-result")
    assert text(browser, "status").startswith("Online") and "1 update waiting to send" in text(browser, "status")

    browser.execute_script("window.webfl.pyodide.runPython(arguments[0])", patience.format(30))
    browser.find_element(By.ID, "train-button").click()
    until(browser, lambda d: "Saved on this device" in text(d, "train-result"), 60)
    words = text(browser, "train-result")
    assert "the server asked to wait (this task accepts 1 update per minute from one participant)" in words
    assert "It is sent by itself in about" in words and "connection" not in words
    assert text(browser, "status").startswith("Online") and "1 update waiting to send" in text(browser, "status")
    assert "No connection" not in text(browser, "next-hint")
    assert browser.find_element(By.ID, "cancel").get_attribute("textContent") == "Cancel training"  # hidden
    time.sleep(6)  # the page checks its waiting update every 5 s: within the wait it does not ask
    assert text(browser, "status").startswith("Online") and "1 update waiting to send" in text(browser, "status")
    # a reload within the wait knows it too (the told time is kept on the device): no try
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": COUNT_SENDS})
    browser.refresh()
    assert wait_ready(browser) == "ready"
    until(browser, lambda d: "1 update waiting to send" in text(d, "status"), 10)
    assert text(browser, "status").startswith("Online")
    assert browser.execute_script("return window.sends") == 0
    assert live_server.api("GET", f"/api/tasks/{task['id']}")["version"] == 1


def test_a_page_joining_past_the_joins_per_minute_waits_its_turn(browser, tmp_path):
    """A class behind one network address meets the joins-per-minute limit: the page waits
    as long as the server says (counting down in plain words), then joins by itself."""
    server = LiveServer(tmp_path / "server", env={"WEBFL_JOINS_PER_MINUTE": "1"})
    try:
        task = server.demo_task()
        server.api("POST", "/api/join", {"code": task["join_code"]})  # the first of the class
        browser.get(f"{server.url}/?join={task['join_code']}")
        until(browser, lambda d: "Many people are joining from this network: joining in" in text(d, "status"), 60)
        assert wait_ready(browser) == "ready"
        assert text(browser, "status").startswith("Online")
        assert len(server.api("GET", f"/api/admin/tasks/{task['id']}/clients")["clients"]) == 2
    finally:
        server.stop()
