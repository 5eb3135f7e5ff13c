"""The admin's first minutes (issue 15): sign-in words without code, a live task list, and a
new task that opens on its join link and states its build in words, not as an error."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from test_ui import open_page, shot, sign_in, text, until

pytestmark = pytest.mark.browser


def test_sign_in_words_and_a_live_task_list(browser, live_server):
    open_page(browser, live_server.url + "/admin")
    assert "`" not in text(browser, "login") and "admin token" in text(browser, "login")
    browser.find_element(By.ID, "token").send_keys(live_server.admin_token, Keys.ENTER)
    until(browser, lambda d: d.find_elements(By.ID, "task-list"))
    task = live_server.create_task("Live list", classes=["a", "b"])  # appears without a reload
    row = f'.task-row[data-id="{task["id"]}"]'
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, row), 15)
    assert "version 0" in browser.find_element(By.CSS_SELECTOR, row).text
    live_server.api("PATCH", f"/api/admin/tasks/{task['id']}", {"title": "Live list, renamed"})
    until(browser, lambda d: "renamed" in d.find_element(By.CSS_SELECTOR, row).text, 15)
    browser.find_element(By.CSS_SELECTOR, row + " a").click()
    until(browser, lambda d: d.find_elements(By.ID, "task-detail"))


def test_a_new_task_opens_on_its_join_link_and_says_what_it_is_doing(browser, live_server):
    sign_in(browser, live_server)
    browser.find_element(By.ID, "new-task").click()
    until(browser, lambda d: d.find_elements(By.ID, "task-form"))
    browser.find_element(By.ID, "title").send_keys("Landing")
    browser.find_element(By.ID, "classes").send_keys("yes, no")
    save = browser.find_element(By.ID, "save-task")
    browser.execute_script("arguments[0].scrollIntoView()", save)
    assert browser.execute_script("return window.scrollY") > 0
    save.click()
    until(browser, lambda d: d.find_elements(By.ID, "task-detail"))
    assert browser.execute_script("return window.scrollY") == 0
    assert browser.find_element(By.ID, "join-link").is_displayed() and browser.find_element(By.ID, "qr")
    seen = set()

    def ready(d):
        seen.add(text(d, "status"))
        seen.add(text(d, "bundle-status"))
        return "Model ready" in text(d, "bundle-status")

    until(browser, ready, 120)
    assert not [s for s in seen if "Could not refresh" in s or "no global model" in s], seen
    shot(browser, "admin-new-task-landing")


def test_without_a_validation_set_the_dashboard_shows_what_participants_measured(browser, live_server):
    import subprocess
    import sys

    from live import ROOT
    from test_ui import chart_points

    task = live_server.create_task("No validation set", classes=[str(d) for d in range(10)], min_labelled=10,
                                   batch_size=16)
    sign_in(browser, live_server)
    browser.find_element(By.CSS_SELECTOR, f'.task-row[data-id="{task["id"]}"] a').click()
    until(browser, lambda d: d.find_elements(By.ID, "dashboard"))
    proc = subprocess.run([sys.executable, "-m", "server.cli", "client", "--server", live_server.url, "--code",
                           task["join_code"], "--clients", "2", "--samples", "80", "--rounds", "2"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # one point per version whose updates reported a test accuracy (4 updates: up to 4 versions)
    until(browser, lambda d: len(chart_points(d, "chart-accuracy") or []) >= 2
          and "participants report" in text(d, "dashboard-summary"), 60)
    points = chart_points(browser, "chart-accuracy")
    assert all(0 <= p <= 1 for p in points)
    caption = browser.find_element(By.CSS_SELECTOR, "#dashboard figure:nth-child(2) figcaption").text
    assert "Participants' own test accuracy" in caption
    assert "participants report" in text(browser, "dashboard-summary")
    shot(browser, "admin-participant-reported-accuracy")
