"""The participant's guided flow and the admin's pages as people meet them, in headless
Chromium at desktop and phone widths: every step photographed under
test-artifacts/experience/, axe-core run over every page state (0 serious or critical
violations), and the whole participant flow done with the keyboard alone."""
from __future__ import annotations

import time

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from client_helpers import digit_files, image_folder_zip
from live import ARTIFACTS, accessibility_problems, wait_ready
from test_ui import sign_in, text, until

pytestmark = pytest.mark.browser
SHOTS = ARTIFACTS / "experience"
WIDTHS = {"desktop": (1280, 900), "phone": (360, 740)}


class Visit:
    """One participant's browser at one width: photographs and checks each state it reaches."""

    def __init__(self, driver, width: str) -> None:
        self.driver, self.width = driver, width
        self.checked: dict[str, int] = {}
        driver.set_window_size(*WIDTHS[width])

    def state(self, name: str) -> None:
        """Screenshot this state and hold it to axe-core: no serious or critical problem."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SHOTS / f"{self.width}-{name}.png"))
        problems = accessibility_problems(self.driver)
        assert not problems, f"{self.width} {name}: {problems}"
        overflow = self.driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{self.width} {name}: the page is {overflow}px wider than the screen"
        self.checked[name] = len(problems)

    def in_view(self, element_id: str) -> bool:
        """Whether the element is on screen now (not scrolled away)."""
        return self.driver.execute_script("""const r = document.getElementById(arguments[0]).getBoundingClientRect();
            return r.width > 0 && r.top >= 0 && r.bottom <= window.innerHeight;""", element_id)

    def any_in_view(self, *element_ids: str, timeout: float = 5) -> None:
        """Wait (a layout can settle a frame late on a loaded machine) until one of the
        elements is on screen; if none gets there, say where each one is."""
        try:
            until(self.driver, lambda d: any(self.in_view(i) for i in element_ids), timeout)
        except TimeoutException:
            where = self.driver.execute_script("""return [window.scrollY, window.innerHeight,
                document.documentElement.scrollHeight, ...arguments[0].map((i) => {
                  const r = document.getElementById(i).getBoundingClientRect();
                  return `${i}: top ${Math.round(r.top)} bottom ${Math.round(r.bottom)} width ${Math.round(r.width)}`;
                })];""", list(element_ids + ("guide",)))
            raise AssertionError(f"{self.width}: none of {element_ids} on screen (scrollY, innerHeight, "
                                 f"page height, rects): {where}") from None


def click(driver, element) -> None:
    """Click as a person would: with the element scrolled to the middle of the screen, not
    under the step bar that stays on top."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def order(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('#grid .tile')].map((t) => t.dataset.id)")


def hint(driver) -> str:
    return text(driver, "next-hint")


def next_action(driver):
    return driver.find_element(By.ID, "next-action")


@pytest.fixture
def flow_task(live_server):
    """A task nobody has trained yet (each test starts where a new participant does)."""
    return live_server.create_task("Digits, guided", classes=[str(d) for d in range(10)], min_labelled=10,
                                   batch_size=8, local_epochs=2)


def add(driver, tmp_path, name: str, files) -> None:
    path = tmp_path / name
    path.write_bytes(image_folder_zip(files))
    driver.find_element(By.ID, "file-input").send_keys(str(path))


@pytest.mark.parametrize("width", list(WIDTHS))
def test_guided_flow_every_step_in_view_accessible_and_kept_on_reload(browser, live_server, flow_task, tmp_path,
                                                                       width):
    visit = Visit(browser, width)
    browser.get(f"{live_server.url}/")
    assert wait_ready(browser) == "ready"
    visit.state("01-join-form")
    browser.find_element(By.ID, "join-code").send_keys(flow_task["join_code"])
    browser.find_element(By.ID, "join-name").send_keys(f"Ada on a {width}", Keys.ENTER)
    until(browser, lambda d: d.find_elements(By.ID, "next-action"))
    wait_ready(browser)
    assert browser.find_element(By.ID, "display-name").get_attribute("value") == f"Ada on a {width}"
    # step 1: nothing here yet; the one main action says so, and is on screen
    assert hint(browser).startswith("Step 1 of 4") and next_action(browser).text == "Add photos"
    assert "No photos yet" in text(browser, "grid")
    assert "1 Add photos" in browser.find_element(By.CSS_SELECTOR, "#steps li.current").text.replace("\n", " ")
    visit.state("02-empty")
    # photos without labels: the model has learned nothing, so the guide says to label by hand
    loose = digit_files(16, offset=700)
    add(browser, tmp_path, "loose.zip", [(n.split("/")[-1], b, "") for n, b, _ in loose])
    until(browser, lambda d: "16 images added" in text(d, "import-message"))
    until(browser, lambda d: "has not learned anything yet" in hint(d))
    assert next_action(browser).text == "Label the first photo"
    next_action(browser).click()
    first = order(browser)[0]
    until(browser, lambda d: d.switch_to.active_element.get_attribute("data-id") == first)
    visit.state("03-label-by-hand")
    click(browser, browser.find_element(By.ID, "suggest"))
    until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".tile.suggested")) == 16)
    assert "guesses" in text(browser, "suggest-message")
    assert "Accept 0 suggestions" == browser.find_element(By.ID, "accept-all").text  # the count, before clicking
    threshold = browser.find_element(By.ID, "threshold")
    threshold.clear()
    threshold.send_keys("0")
    until(browser, lambda d: d.find_element(By.ID, "accept-all").text == "Accept 16 suggestions")
    visit.state("04-suggestions")
    # a review pass: accepting and deleting change tiles in place, nothing moves
    before = order(browser)
    click(browser, browser.find_elements(By.CSS_SELECTOR, ".tile.suggested button.accept")[0])
    until(browser, lambda d: "1 labelled" in text(d, "count-summary"))
    assert order(browser) == before
    assert "labelled" in browser.find_element(By.CSS_SELECTOR, f'.tile[data-id="{before[0]}"]').get_attribute("class")
    victim = before[1]
    click(browser, browser.find_element(By.CSS_SELECTOR, f'.tile[data-id="{victim}"] button.delete'))
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f'.tile.deleted[data-id="{victim}"]'))
    assert order(browser) == before and text(browser, "count-summary").startswith("15 images")
    visit.state("05-deleted-with-undo")
    click(browser, browser.find_element(By.CSS_SELECTOR, f'.tile[data-id="{victim}"] button.undo'))
    until(browser, lambda d: text(d, "count-summary").startswith("16 images"))
    assert order(browser) == before and "suggested" in browser.find_element(
        By.CSS_SELECTOR, f'.tile[data-id="{victim}"]').get_attribute("class")
    # labelled photos (a zip in class folders): enough to train; held-out photos are marked
    add(browser, tmp_path, "labelled.zip", digit_files(40, offset=800))
    until(browser, lambda d: "40 images added" in text(d, "import-message"))
    until(browser, lambda d: next_action(d).text.startswith("Train on"))
    tests = browser.find_elements(By.CSS_SELECTOR, ".tile .badge.test")
    assert tests and all(b.text == "test" for b in tests)
    visit.state("06-ready-to-train")
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")  # far down the page
    next_action(browser).click()
    until(browser, lambda d: "Pass" in text(d, "train-text") or "Done" in text(d, "train-text"), 60)
    visit.any_in_view("next-action", "train-progress", "cancel")
    until(browser, lambda d: "learned from your" in text(d, "train-result"), 120)
    result = text(browser, "train-result")
    done = text(browser, "train-text")
    assert "Training error went from" in done
    chart_last = browser.execute_script("const c = Chart.getChart('loss-chart'); const d = c.data.datasets[0].data;"
                                        "return d[d.length - 1];")
    assert f"to {chart_last:.3f}" in done  # the chart and the words agree
    until(browser, lambda d: next_action(d).text == "Test the model")
    visit.any_in_view("next-action")
    visit.state("07-trained")
    next_action(browser).click()
    until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".test-accuracy")) == 2)
    tested = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".test-accuracy")]
    assert tested[0].startswith("Your model after your last training") and tested[1].startswith("The shared model")
    click(browser, browser.find_element(By.CSS_SELECTOR, ".test-details summary"))
    visit.state("08-tested")
    # a reload keeps the round's outcome, the test results and the review position
    Select(browser.find_element(By.ID, "filter")).select_by_value("suggested")
    focus = order(browser)[2]
    click(browser, browser.find_element(By.CSS_SELECTOR, f'.tile[data-id="{focus}"]'))
    time.sleep(0.5)  # the position is written to IndexedDB on focus
    browser.refresh()
    assert wait_ready(browser) == "ready"
    assert text(browser, "train-result").startswith(result)
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".test-accuracy")] == tested
    assert Select(browser.find_element(By.ID, "filter")).first_selected_option.get_attribute("value") == "suggested"
    assert browser.switch_to.active_element.get_attribute("data-id") == focus
    visit.state("09-after-reload")
    # plain words by default, the technical details one click away
    status = text(browser, "status")
    assert "shared model has learned from" in status and "wasm" not in status
    browser.find_element(By.CSS_SELECTOR, "#tech summary").click()
    assert "wasm" in text(browser, "tech-text")
    assert "This device" in text(browser, "device-words") and "wasm" not in text(browser, "device-words")
    # the organiser sees the name given at the join form, and a changed one
    field = browser.find_element(By.ID, "display-name")
    field.clear()
    field.send_keys(f"Ada ({width})", Keys.ENTER)
    until(browser, lambda d: "Saved" in text(d, "name-message"))
    names = [c["name"] for c in live_server.api("GET", f"/api/admin/tasks/{flow_task['id']}/clients")["clients"]]
    assert f"Ada ({width})" in names
    assert len(visit.checked) == 9


def test_the_whole_flow_by_keyboard_alone(browser, live_server, tmp_path):
    """Add (the file chooser is the system's), label, train and test without a mouse."""
    task = live_server.create_task("Digits, keyboard", classes=[str(d) for d in range(10)], min_labelled=6,
                                   batch_size=8, local_epochs=1)
    browser.set_window_size(1280, 900)
    browser.get(f"{live_server.url}/?join={task['join_code']}")
    assert wait_ready(browser) == "ready"
    files = digit_files(12, offset=600)
    add(browser, tmp_path, "loose.zip", [(n.split("/")[-1], b, "") for n, b, _ in files])
    until(browser, lambda d: "12 images added" in text(d, "import-message"))
    keys = ActionChains(browser)

    def tab_to(predicate, limit: int = 80):
        for _ in range(limit):
            keys.send_keys(Keys.TAB).perform()
            if predicate(browser.switch_to.active_element):
                return browser.switch_to.active_element
        raise AssertionError("Tab never reached the element")

    browser.find_element(By.TAG_NAME, "body").click()  # start from the top of the page, like a fresh visit
    browser.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    # the main action is the first control after the header: Enter on it goes to the first photo
    tab_to(lambda e: e.get_attribute("id") == "next-action")
    assert browser.switch_to.active_element.text == "Label the first photo"
    keys.send_keys(Keys.ENTER).perform()
    until(browser, lambda d: "tile" in (d.switch_to.active_element.get_attribute("class") or ""))
    # label every photo with its digit's key (the classes are digits); focus moves on by itself
    import hashlib

    truth = {hashlib.sha256(data).hexdigest()[:16]: label for _, data, label in files}
    for n in range(12):
        tile = browser.switch_to.active_element.get_attribute("data-id")
        keys.send_keys(truth[tile]).perform()
        until(browser, lambda d, n=n: f"{n + 1} labelled" in text(d, "count-summary"))
    assert text(browser, "count-summary").startswith("12 images: 12 labelled")
    ids = order(browser)
    labels = browser.execute_script("return [...document.querySelectorAll('#grid .tile .label')].map((s) => s.textContent)")
    assert labels == [f"{truth[i]} (corrected)" for i in ids]
    # one Tab leaves the grid (a single tab stop), and the guide's action trains
    browser.execute_script("window.scrollTo(0, 0)")
    browser.execute_script("document.activeElement.blur()")
    tab_to(lambda e: e.get_attribute("id") == "next-action")
    assert browser.switch_to.active_element.text.startswith("Train on")
    keys.send_keys(Keys.ENTER).perform()
    until(browser, lambda d: "learned from your" in text(d, "train-result"), 120)
    until(browser, lambda d: next_action(d).text == "Test the model")
    browser.execute_script("document.activeElement.blur()")
    tab_to(lambda e: e.get_attribute("id") == "next-action")
    keys.send_keys(Keys.ENTER).perform()
    until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".test-accuracy")) == 2)
    # a photo deleted by keyboard comes back with Enter on its place
    tab_to(lambda e: "tile" in (e.get_attribute("class") or ""))
    tile = browser.switch_to.active_element.get_attribute("data-id")
    before = text(browser, "count-summary")
    keys.send_keys(Keys.DELETE).perform()
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f'.tile.deleted[data-id="{tile}"]'))
    if browser.switch_to.active_element.get_attribute("data-id") != tile:  # focus moved on to the next photo
        keys.send_keys(Keys.ARROW_LEFT).perform()
    until(browser, lambda d: d.switch_to.active_element.get_attribute("data-id") == tile)
    keys.send_keys(Keys.ENTER).perform()
    until(browser, lambda d: text(d, "count-summary") == before)
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "desktop-keyboard-done.png"))


def test_admin_pages_are_accessible_and_help_follows_the_model(browser, live_server, flow_task):
    browser.set_window_size(1280, 900)
    browser.get(live_server.url + "/admin")
    assert wait_ready(browser) == "ready"
    visit = Visit(browser, "desktop")
    visit.state("admin-01-sign-in")
    sign_in(browser, live_server)
    visit.state("admin-02-tasks")
    browser.find_element(By.ID, "new-task").click()
    until(browser, lambda d: d.find_elements(By.ID, "task-form"))
    model = Select(browser.find_element(By.ID, "model"))
    model.select_by_value("digits_cnn")
    digits_help = text(browser, "model-help")
    model.select_by_value("mobilenet_v2")
    until(browser, lambda d: text(d, "model-help") != digits_help)
    assert "MobileNetV2" in text(browser, "model-help") and "learning rate" in text(browser, "model-help")
    assert browser.find_element(By.ID, "lr").get_attribute("value") == "0.01"  # the model's suggestion
    model.select_by_value("digits_cnn")
    assert browser.find_element(By.ID, "lr").get_attribute("value") == "0.003"
    rate = browser.find_element(By.ID, "lr")
    rate.clear()
    rate.send_keys("0.02")  # the admin's own choice is kept
    model.select_by_value("mobilenet_v2")
    assert browser.find_element(By.ID, "lr").get_attribute("value") == "0.02"
    visit.state("admin-03-new-task")
    browser.get(live_server.url + "/admin")
    wait_ready(browser)
    browser.find_element(By.CSS_SELECTOR, f'.task-row[data-id="{flow_task["id"]}"] a').click()
    until(browser, lambda d: d.find_elements(By.ID, "dashboard"))
    visit.state("admin-04-task")
    for width in ("phone",):
        phone = Visit(browser, width)
        phone.state("admin-05-task")


def test_several_tasks_in_one_browser_each_with_its_own_photos(browser, live_server, tmp_path):
    first = live_server.create_task("Digits at home", classes=[str(d) for d in range(10)])
    second = live_server.create_task("Digits at school", classes=[str(d) for d in range(10)])
    browser.set_window_size(1280, 900)
    browser.get(f"{live_server.url}/?join={first['join_code']}")
    assert wait_ready(browser) == "ready"
    add(browser, tmp_path, "home.zip", digit_files(12, offset=400))
    until(browser, lambda d: "12 images added" in text(d, "import-message"))
    browser.get(f"{live_server.url}/?join={second['join_code']}")
    assert wait_ready(browser) == "ready"
    add(browser, tmp_path, "school.zip", digit_files(5, offset=450))
    until(browser, lambda d: "5 images added" in text(d, "import-message"))
    assert "Your other tasks" in text(browser, "my-tasks") and "Digits at home" in text(browser, "my-tasks")
    Visit(browser, "desktop").state("10-other-tasks")
    # the organiser changes the first task's join code: the participant still gets back to it
    live_server.api("POST", f"/api/admin/tasks/{first['id']}/join-code")
    browser.find_element(By.LINK_TEXT, "Digits at home").click()
    assert wait_ready(browser) == "ready"
    assert f"task={first['id']}" in browser.current_url
    assert text(browser, "task").startswith("Digits at home")
    assert text(browser, "count-summary").startswith("12 images")
    assert "Digits at school" in text(browser, "my-tasks")
    # the join form lists both, to continue where they left off
    browser.get(f"{live_server.url}/")
    assert wait_ready(browser) == "ready"
    listed = text(browser, "my-tasks")
    assert "Digits at home" in listed and "Digits at school" in listed
    # a task this browser never joined: a plain explanation, not an error
    browser.get(f"{live_server.url}/?task=not-a-task")
    assert wait_ready(browser) == "ready"
    assert "has not joined that task" in text(browser, "task")
