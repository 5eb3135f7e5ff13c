"""User-study mode in headless Chromium, end to end: the notice, a participant's actions on
the page reaching the server (after a reload too), the admin's export, and a participant who
declined whose page records nothing. Screenshots go to test-artifacts/study/."""
from __future__ import annotations

import csv
import io
import json
import time

import pytest
from selenium.webdriver.common.by import By

from client_helpers import digit_files, image_folder_zip
from live import ARTIFACTS, accessibility_problems, wait_ready
from test_ui import sign_in, text, until

pytestmark = pytest.mark.browser
SHOTS = ARTIFACTS / "study"


def shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def log(live_server, task) -> list[dict]:
    raw = live_server.raw("GET", f"/api/admin/tasks/{task['id']}/study/export?format=jsonl")
    return [json.loads(line) for line in raw.decode().splitlines()]


def page_state(driver) -> str:
    return driver.execute_script("return document.documentElement.dataset.webflState")


@pytest.fixture(scope="module")
def study_task(live_server):
    return live_server.create_task("Digits study", classes=[str(d) for d in range(10)], min_labelled=10,
                                   batch_size=8, user_study=True)


def test_page_actions_reach_the_server_and_the_admin_export(browser, live_server, study_task, tmp_path):
    browser.get(f"{live_server.url}/?join={study_task['join_code']}&slot=study-yes")
    until(browser, lambda d: d.find_elements(By.ID, "study-consent") and page_state(d) == "ready")
    assert "never leave" in text(browser, "study-consent")
    shot(browser, "notice")
    assert not accessibility_problems(browser)
    browser.find_element(By.ID, "study-agree").click()
    assert wait_ready(browser) == "ready"
    until(browser, lambda d: d.find_elements(By.ID, "study-status"))
    assert "recorded for research" in text(browser, "study-status")

    files = digit_files(40, offset=300)
    labelled = tmp_path / "labelled.zip"
    labelled.write_bytes(image_folder_zip(files[:30]))
    browser.find_element(By.ID, "file-input").send_keys(str(labelled))
    until(browser, lambda d: "30 images added" in text(d, "import-message"))
    loose = []
    for i, (name, data, _) in enumerate(files[30:36]):
        path = tmp_path / f"loose{i}.png"
        path.write_bytes(data)
        loose.append(str(path))
    browser.find_element(By.ID, "file-input").send_keys("\n".join(loose))
    until(browser, lambda d: "6 unlabelled" in text(d, "count-summary"))
    browser.find_element(By.ID, "suggest").click()
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#grid button[data-action="accept"]'))
    browser.find_element(By.CSS_SELECTOR, '#grid button[data-action="accept"]').click()
    until(browser, lambda d: "31 labelled" in text(d, "count-summary"))
    browser.find_element(By.CSS_SELECTOR, '#grid button[data-action="delete"]').click()
    until(browser, lambda d: text(d, "count-summary").startswith("35 images"))
    browser.find_element(By.ID, "train-button").click()
    until(browser, lambda d: "learned from your" in text(d, "train-result"), 120)
    browser.find_element(By.ID, "test-button").click()
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".test-accuracy"))
    shot(browser, "recording")
    assert not accessibility_problems(browser)
    browser.refresh()
    assert wait_ready(browser) == "ready"
    assert not browser.find_elements(By.ID, "study-consent")  # answered once, not asked again

    expected = ["add", "add", "suggestion", "accept", "delete", "train", "round", "test", "reload"]

    def arrived(_):
        actions = [e["action"] for e in log(live_server, study_task)]
        return all(a in actions for a in expected) and actions

    actions = until(browser, arrived, 30)
    events = log(live_server, study_task)
    assert len({e["participant"] for e in events}) == 1
    assert actions[:2] == ["add", "add"] and actions[-1] == "reload"
    suggestions = [e for e in events if e["action"] == "suggestion"]
    assert len(suggestions) == 6 and all(0 < e["detail"]["confidence"] <= 1 for e in suggestions)
    accepted = next(e for e in events if e["action"] == "accept")
    assert accepted["detail"]["item"] in {e["detail"]["item"] for e in suggestions}
    assert next(e for e in events if e["action"] == "round")["detail"]["status"] == "applied"

    # the admin sees the counts and downloads the same log
    downloads = tmp_path / "dl"
    downloads.mkdir()
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    sign_in(browser, live_server)
    browser.find_element(By.CSS_SELECTOR, f'.task-row[data-id="{study_task["id"]}"] a').click()
    until(browser, lambda d: d.find_elements(By.ID, "study-summary") and "1 participant agreed" in text(d, "study-summary"))
    shot(browser, "admin")
    assert not accessibility_problems(browser)
    browser.find_element(By.ID, "study-export-csv").click()
    until(browser, lambda d: any(p.suffix == ".csv" for p in downloads.iterdir()), 30)
    time.sleep(0.5)
    rows = list(csv.DictReader(io.StringIO(next(downloads.glob("*.csv")).read_text())))
    assert [r["action"] for r in rows] == [e["action"] for e in log(live_server, study_task)][:len(rows)]
    assert len(rows) >= len(events)


def test_a_participant_who_declines_is_not_recorded(browser, live_server, study_task, tmp_path):
    browser.get(f"{live_server.url}/?join={study_task['join_code']}&slot=study-no")
    until(browser, lambda d: d.find_elements(By.ID, "study-consent") and page_state(d) == "ready")
    before = log(live_server, study_task)
    browser.find_element(By.ID, "study-decline").click()
    assert wait_ready(browser) == "ready"
    until(browser, lambda d: d.find_elements(By.ID, "study-status"))
    assert "nothing you do here is recorded" in text(browser, "study-status").lower()
    path = tmp_path / "some.zip"
    path.write_bytes(image_folder_zip(digit_files(12, offset=500)))
    browser.find_element(By.ID, "file-input").send_keys(str(path))
    until(browser, lambda d: "12 images added" in text(d, "import-message"))
    time.sleep(3)  # longer than the page's send interval
    assert log(live_server, study_task) == before
    summary = live_server.api("GET", f"/api/admin/tasks/{study_task['id']}/study")
    assert summary["declined"] >= 1
    # the page's own token is refused if it tries anyway
    status = browser.execute_async_script("""
const done = arguments[arguments.length - 1];
const py = window.webfl.pyodide;
py.runPythonAsync(`
import json
from browser_py.app import participant
from browser_py.protocol import ServerRefused
try:
    await participant.client.call("POST", f"/api/tasks/{participant.client.task_id}/study/events",
        json.dumps({"events": [{"id": "forced1", "at": 1.0, "action": "add"}]}).encode(),
        {"Content-Type": "application/json"})
    result = 201
except ServerRefused as exc:
    result = exc.status
result
`).then(done, (e) => done(String(e)));
""")
    assert status == 403
    shot(browser, "declined")
