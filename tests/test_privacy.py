"""No image leaves the participant's browser: every request the page makes during import,
labelling and training is recorded (DevTools network events) and checked."""
from __future__ import annotations

import base64
import json
import shutil
import tempfile
from urllib.parse import urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from client_helpers import digit_files, image_folder_zip
from experiments.browser import start_chrome
from live import wait_ready

pytestmark = pytest.mark.browser


def test_no_image_data_leaves_the_browser(live_server, tmp_path):
    task = live_server.create_task("privacy", classes=[str(d) for d in range(10)], min_labelled=10)
    files = digit_files(30, offset=700)
    archive = tmp_path / "mine.zip"
    archive.write_bytes(image_folder_zip(files))
    profile = tempfile.mkdtemp()
    driver = start_chrome(profile, network_log=True)
    try:
        driver.get(f"{live_server.url}/?join={task['join_code']}")
        assert wait_ready(driver) == "ready"
        driver.get_log("performance")  # start recording after start-up (runtime files only so far)
        driver.find_element(By.ID, "file-input").send_keys(str(archive))
        WebDriverWait(driver, 60).until(lambda d: "30 images added" in d.find_element(By.ID, "import-message").text)
        driver.find_element(By.ID, "suggest").click()
        driver.find_element(By.ID, "train-button").click()
        WebDriverWait(driver, 120).until(lambda d: "learned from your" in d.find_element(By.ID, "train-result").text)
        driver.find_element(By.ID, "test-button").click()
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".test-accuracy"))
        events = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
        sent = [e["params"] for e in events if e["method"] == "Network.requestWillBeSent"]
        bodies = []
        for req in sent:
            request = req["request"]
            url = urlparse(request["url"])
            if url.scheme in ("blob", "data"):
                continue  # thumbnails shown from memory, never sent
            assert f"{url.scheme}://{url.netloc}" == live_server.url, request["url"]  # only our server
            if request.get("hasPostData"):
                try:
                    body = driver.execute_cdp_cmd("Network.getRequestPostData", {"requestId": req["requestId"]})
                    data = body["postData"]
                    data = base64.b64decode(data) if body.get("base64Encoded") else data.encode("latin-1")
                except Exception:
                    data = None
                bodies.append((request["method"], url.path, data, request.get("headers", {})))
        posts = [(m, p) for m, p, _, _ in bodies]
        assert posts == [("POST", f"/api/tasks/{task['id']}/updates")], posts
        _, _, update, headers = bodies[0]
        n = live_server.api("GET", f"/api/tasks/{task['id']}/manifest")["num_parameters"]
        assert update is not None, "DevTools did not keep the update body"
        assert len(update) == 4 * n  # exactly the model's parameters, nothing else
        assert b"\x89PNG" not in update and all(png[:64] not in update for _, png, _ in files)
        assert all("png" not in req["request"]["url"].lower() for req in sent  # no image file asked of anyone
                   if urlparse(req["request"]["url"]).scheme not in ("blob", "data"))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
