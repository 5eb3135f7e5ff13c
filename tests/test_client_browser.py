"""The participant's client in headless Chromium: Python in Pyodide, IndexedDB, onnxruntime-web."""
from __future__ import annotations


import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from client_helpers import digit_files, image_folder_zip, png
from live import ARTIFACTS, wait_ready

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page_task(live_server):
    return live_server.create_task("browser digits", classes=[str(d) for d in range(10)], min_labelled=10,
                                   batch_size=16, local_epochs=2)


def text_of(driver, id_: str) -> str:
    return driver.find_element(By.ID, id_).text


def wait_text(driver, id_: str, needle: str, timeout: float = 120) -> str:
    WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: needle in text_of(d, id_))
    return text_of(driver, id_)


def open_task(browser, live_server, task, slot: str = "default"):
    browser.get(f"{live_server.url}/?join={task['join_code']}&slot={slot}")
    state = wait_ready(browser)
    assert state == "ready", browser.execute_script("return document.documentElement.dataset.webflError")


def test_join_import_train_send_and_reload(browser, live_server, page_task, tmp_path):
    open_task(browser, live_server, page_task)
    assert "Your photos stay on this device" in text_of(browser, "task")
    assert "Label at least 10" in text_of(browser, "train-reason")
    assert browser.find_element(By.ID, "train-button").get_attribute("disabled") is not None

    labelled = tmp_path / "labelled.zip"
    labelled.write_bytes(image_folder_zip(digit_files(40)))
    loose = []
    for i, (name, data, _) in enumerate(digit_files(5, offset=30)):
        path = tmp_path / f"loose{i}.png"
        path.write_bytes(data)
        loose.append(str(path))
    (tmp_path / "notes.txt").write_text("not an image")
    picker = browser.find_element(By.ID, "file-input")
    picker.send_keys(str(labelled))
    wait_text(browser, "import-message", "40 images added")
    picker.send_keys("\n".join(loose + [str(tmp_path / "notes.txt")]))
    message = wait_text(browser, "import-message", "5 images added")
    assert "1 refused" in message and "not an image" in message
    summary = text_of(browser, "count-summary")
    assert summary.startswith("45 images: 40 labelled") and "5 unlabelled" in summary
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "participant-imported.png"))

    browser.find_element(By.ID, "suggest").click()
    WebDriverWait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".tile.suggested")) == 5)

    before = live_server.api("GET", f"/api/tasks/{page_task['id']}")["version"]
    browser.find_element(By.ID, "train-button").click()
    result = wait_text(browser, "train-result", "learned from your")
    # the page redraws counts and tiles when the round has ended (the button comes back then):
    # reading them before races with that redraw
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "train-button").is_enabled())
    after = live_server.api("GET", f"/api/tasks/{page_task['id']}")["version"]
    assert after == before + 1 and f"version {after}" in result
    metrics = live_server.api("GET", f"/api/tasks/{page_task['id']}/metrics?since={before}")
    samples = metrics["versions"][0]["updates"][0]["samples"]
    train_count = sum(int(td.text) for td in browser.find_elements(By.CSS_SELECTOR, ".count-row td:nth-child(2)"))
    assert samples == train_count

    # Correct a label, then reload: images, labels and the membership survive.
    tile = browser.find_element(By.CSS_SELECTOR, ".tile.suggested")
    tile_id = tile.get_attribute("data-id")
    Select(tile.find_element(By.CSS_SELECTOR, "select.pick")).select_by_value("3")
    WebDriverWait(browser, 30).until(lambda d: "46" not in text_of(d, "count-summary") and
                                     "41 labelled" in text_of(d, "count-summary"))
    browser.refresh()
    assert wait_ready(browser) == "ready"
    assert text_of(browser, "count-summary").startswith("45 images: 41 labelled")
    # the review position survives too: still showing the suggestions; all photos on request
    assert Select(browser.find_element(By.ID, "filter")).first_selected_option.get_attribute("value") == "suggested"
    Select(browser.find_element(By.ID, "filter")).select_by_value("all")
    tile = browser.find_element(By.CSS_SELECTOR, f'.tile[data-id="{tile_id}"]')
    assert "3 (corrected)" in tile.text
    clients = live_server.api("GET", f"/api/admin/tasks/{page_task['id']}/clients")["clients"]
    assert len(clients) == 1  # the reload resumed the same participant


def test_two_slots_in_one_browser_do_not_mix(browser, live_server, page_task, tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(image_folder_zip(digit_files(12, offset=50)))
    open_task(browser, live_server, page_task, slot="alice")
    browser.find_element(By.ID, "file-input").send_keys(str(archive))
    wait_text(browser, "import-message", "12 images added")
    open_task(browser, live_server, page_task, slot="bob")
    assert text_of(browser, "count-summary").startswith("0 images")
    open_task(browser, live_server, page_task, slot="alice")
    assert text_of(browser, "count-summary").startswith("12 images")


RECORD_READS = """
const [chunk, done] = arguments;
window.webfl.pyodide.runPythonAsync(`
import browser_py.dataset as dataset
import browser_py.zip_reader as zip_reader
reads, read = [], zip_reader.BlobSource.read
async def recorded(self, start, end):
    reads.append([start, end])
    return await read(self, start, end)
zip_reader.BlobSource.read, dataset.IMPORT_CHUNK = recorded, ${chunk}
`).then(() => done("ok"), (e) => done(String(e)));
"""


def test_a_zip_chosen_in_the_page_is_read_a_chunk_at_a_time(browser, live_server, page_task, tmp_path):
    """The page hands a zip over as its File: the archive's directory is read, then each
    chunk's members, and never the whole archive at once (it used to be copied in whole:
    60 MB of camera photos held the page 83-134 ms)."""
    archive = tmp_path / "chunks.zip"
    archive.write_bytes(image_folder_zip(digit_files(100, offset=200)))
    open_task(browser, live_server, page_task, slot="chunks")
    try:
        assert browser.execute_async_script(RECORD_READS, 20) == "ok"
        browser.find_element(By.ID, "file-input").send_keys(str(archive))
        wait_text(browser, "import-message", "100 images added")
        reads = browser.execute_script("return window.webfl.pyodide.globals.get('reads').toJs()")
    finally:
        browser.execute_script("location.reload()")  # the page's Python afresh: nothing patched stays
    (_, tail_end), *members = reads
    assert tail_end == archive.stat().st_size and len(members) == 100 // 20
    assert max(end - start for start, end in members) < archive.stat().st_size // 3


def slow_tile_pictures(browser, chunk: int, seconds: float) -> None:
    """Imports of ``chunk`` images at a time whose tile pictures take ``seconds`` each, all
    made at once (the page's Python is patched: reload the page after)."""
    assert browser.execute_script(f"""window.webfl.pyodide.runPython(`
import time
import browser_py.dataset as dataset
import browser_py.ui.participant_page as page
made = page.picture_url
def slow_picture_url(item):
    until = time.perf_counter() + {seconds}
    while time.perf_counter() < until:
        pass
    return made(item)
dataset.IMPORT_CHUNK, page.PICTURES_SECONDS, page.picture_url = {chunk}, 0, slow_picture_url
`); return 'ok'""") == "ok"


def test_tile_pictures_are_made_a_few_at_a_time_while_the_import_goes_on(browser, live_server, page_task, tmp_path):
    """While an import goes on, the page makes its tiles' pictures a few per browser task
    (made all at once, an import chunk of camera photos held the page 50-65 ms at a time);
    the import adds items meanwhile, and every photo still ends up with its picture."""
    import io
    import zipfile

    from PIL import Image

    rng = np.random.default_rng(3)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(45):  # large enough for a thumbnail (a blob: URL), not a data: URL
            out = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(out, "JPEG", quality=80)
            zf.writestr(f"p/{i}.jpg", out.getvalue())
    (tmp_path / "photos.zip").write_bytes(archive.getvalue())
    open_task(browser, live_server, page_task, slot="pictures")
    try:
        # slower than a chunk's write: the import adds items while pictures are made
        slow_tile_pictures(browser, chunk=10, seconds=0.005)
        browser.find_element(By.ID, "file-input").send_keys(str(tmp_path / "photos.zip"))
        wait_text(browser, "import-message", "45 images added")
        WebDriverWait(browser, 30).until(lambda d: d.execute_script(
            "return [...document.querySelectorAll('#grid img')].filter((i) => i.src.startsWith('blob:')).length") == 45)
    finally:
        browser.execute_script("location.reload()")  # the page's Python afresh: nothing patched stays


def test_an_import_that_stops_says_so_and_keeps_what_it_added(browser, live_server, page_task, tmp_path):
    """The zip is deleted from the disk while the page reads it a chunk at a time: the import
    line says the import stopped, how many images it added and what to do (not "Adding
    images…" as if still at work), the added ones are shown, and choosing the same file
    again (once it is back) adds only the rest."""
    zipped = tmp_path / "digits.zip"
    archive = image_folder_zip(digit_files(60))
    zipped.write_bytes(archive)
    open_task(browser, live_server, page_task, slot="vanishing")
    try:
        slow_tile_pictures(browser, chunk=5, seconds=0.04)  # a slow device: the file can go mid-import
        browser.find_element(By.ID, "file-input").send_keys(str(zipped))
        wait_text(browser, "import-message", "Adding images", timeout=60)
        zipped.unlink()
        message = wait_text(browser, "import-message", "The import stopped after adding", timeout=60)
        added = int(message.split("after adding ")[1].split(" ")[0])
        assert 5 <= added < 60 and "a file was moved or deleted" in message and "Choose the files again" in message
        assert "Something went wrong: a file was moved or deleted" in text_of(browser, "toast")
        assert text_of(browser, "count-summary").startswith(f"{added} images")

        zipped.write_bytes(archive)
        browser.find_element(By.ID, "file-input").send_keys(str(zipped))
        wait_text(browser, "import-message", f"{60 - added} images added, {added} already here")
        assert text_of(browser, "count-summary").startswith("60 images")
    finally:
        browser.execute_script("location.reload()")  # the page's Python afresh: nothing patched stays


def test_suggestions_a_round_and_a_test_that_stop_say_so(browser, live_server, page_task):
    """An unexpected error in suggesting, training or testing replaces the action's progress
    with a line saying it stopped, why in plain words, and what to do."""
    open_task(browser, live_server, page_task, slot="stopping")
    try:
        lines = browser.execute_async_script("""const done = arguments[0];
window.webfl.pyodide.runPythonAsync(`
import browser_py.app as app
from browser_py.ui.dom import by_id

async def gone(*args, **kwargs):
    raise RuntimeError("NotReadableError: The requested file could not be read")

p, ui = app.participant, app.ui
p.suggest = p.train_round = p.test = gone
lines = []
for action, line in ((ui.suggest, "suggest-message"), (ui.train, "train-text"), (ui.test, "test-result")):
    try:
        await action()
    except RuntimeError:
        lines.append(by_id(line).textContent)
lines
`).then((r) => done(r.toJs()), (e) => done(String(e)));""")
    finally:
        browser.execute_script("location.reload()")  # the page's Python afresh: nothing patched stays
    assert lines == ["The suggestions stopped: a file changed or could not be read. Press Suggest labels to try again.",
                     "The round stopped: a file changed or could not be read. Start it again to try once more.",
                     "The test stopped: a file changed or could not be read. Press the test button to try again."]


def test_browser_decoding_matches_pillow(browser, live_server, page_task):
    """Same-size images decode identically; resized ones differ only by filtering."""
    from browser_py.preprocess import InputSpec, pixels_pillow

    rng = np.random.default_rng(4)
    same = png(rng.integers(0, 256, (28, 28), dtype=np.uint8))
    colour = png(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8))
    smooth = np.clip(np.add.outer(np.arange(100), np.arange(80)) * 1.4, 0, 255).astype(np.uint8)
    big = png(np.stack([smooth, smooth[::-1], smooth[:, ::-1]], axis=-1))
    open_task(browser, live_server, page_task)
    script = """
const [images, done] = arguments;
const py = window.webfl.pyodide;
py.globals.set("images_js", images);
py.runPythonAsync(`
from browser_py.preprocess import InputSpec, pixels_browser
out = []
for data, color, w, h in images_js.to_py():
    px = await pixels_browser(bytes(data), InputSpec(color, w, h))
    out.append(list(px))
out
`).then((r) => done(r.toJs())).catch((e) => done("ERROR: " + e.message));
"""
    cases = [(same, "L", 28, 28), (colour, "L", 28, 28), (colour, "RGB", 28, 28), (big, "RGB", 40, 50)]
    result = browser.execute_async_script(script, [[list(d), c, w, h] for d, c, w, h in cases])
    assert not isinstance(result, str), result
    for (data, color, w, h), web in zip(cases, result):
        native = np.frombuffer(pixels_pillow(data, InputSpec(color, w, h)), np.float32)
        web = np.asarray(web, np.float32)
        assert web.shape == native.shape
        if (w, h) == (28, 28):
            assert np.array_equal(web, native), (color, np.abs(web - native).max())
        else:
            assert np.abs(web - native).mean() < 3.0  # grey levels out of 255, smooth image


SCALED = """
const [data, side, done] = arguments;
window.webfl.pyodide.globals.set("data_js", data);
window.webfl.pyodide.runPythonAsync(`
from browser_py.dataset import stored_size
from browser_py.preprocess import _scaled_jpeg
data = bytes(data_js.to_py())
frame = await _scaled_jpeg(data, ${side}, stored_size(data))
size = None if frame is None else [frame.displayWidth, frame.displayHeight]
if frame is not None:
    frame.close()
size
`).then((r) => done(r && r.toJs ? r.toJs() : r)).catch((e) => done("ERROR: " + e.message));
"""


def test_large_jpegs_decode_at_a_reduced_scale_like_pillow_whole(browser, live_server, page_task):
    """A photo many times the model's size is decoded at a reduced scale (WebCodecs'
    ImageDecoder), EXIF orientation applied, and gives the pixels Pillow gives from the
    whole photo, up to filtering."""
    import io

    from PIL import Image

    from browser_py.preprocess import InputSpec, pixels_pillow

    smooth = np.clip(np.add.outer(np.arange(1500), np.arange(2000)) * 0.07, 0, 255).astype(np.uint8)
    photo = Image.fromarray(np.stack([smooth, smooth[::-1], smooth[:, ::-1]], axis=-1))
    exif = photo.getexif()
    exif[0x0112] = 6  # shown turned a quarter: 1500 wide, 2000 high
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    data = buf.getvalue()
    open_task(browser, live_server, page_task, slot="scaled")
    size = browser.execute_async_script(SCALED, list(data), 224)
    assert not isinstance(size, str), size
    assert 224 <= min(size) and size[0] < size[1] and size[1] < 2000, size  # reduced, upright
    script = """
const [data, done] = arguments;
window.webfl.pyodide.globals.set("data_js", data);
window.webfl.pyodide.runPythonAsync(`
from browser_py.preprocess import InputSpec, pixels_browser
list(await pixels_browser(bytes(data_js.to_py()), InputSpec("RGB", 60, 80)))
`).then((r) => done(r.toJs())).catch((e) => done("ERROR: " + e.message));
"""
    web = browser.execute_async_script(script, list(data))
    assert not isinstance(web, str), web
    native = np.frombuffer(pixels_pillow(data, InputSpec("RGB", 60, 80)), np.float32)
    assert np.abs(np.asarray(web, np.float32) - native).mean() < 3.0


def test_bad_files_are_refused_in_the_browser_with_reasons(browser, live_server, page_task, tmp_path):
    from PIL import Image

    open_task(browser, live_server, page_task, slot="bad-files")
    good = digit_files(1, offset=820)[0][1]
    (tmp_path / "corrupt.png").write_bytes(good[:80] + b"\0" * 200)        # a PNG header, then garbage
    (tmp_path / "letter.jpg").write_bytes(b"Dear participant, this is not a photo.")
    Image.new("L", (8000, 6000)).save(tmp_path / "huge.png")                # 48 megapixels
    (tmp_path / "ok.png").write_bytes(good)
    names = ["corrupt.png", "letter.jpg", "huge.png", "ok.png"]
    browser.find_element(By.ID, "file-input").send_keys("\n".join(str(tmp_path / n) for n in names))
    message = wait_text(browser, "import-message", "1 image added")
    assert "3 refused" in message
    assert "corrupt.png: this image cannot be read" in message
    assert "letter.jpg: this is not an image" in message
    assert "huge.png: the image is too large (8000 x 6000 pixels)" in message
    assert text_of(browser, "count-summary").startswith("1 images")


def test_large_photos_get_thumbnails_and_lying_headers_are_refused(browser, live_server, page_task, tmp_path):
    """A camera-size photo is decoded straight to a small JPEG for its tile (kept across a
    reload), and so is a photo only a little larger than a tile, turned as its EXIF says,
    without a whole decode; a header claiming a huge image is refused before anything is
    decoded; a photo deleted for good gives its tile picture back."""
    from PIL import Image

    from browser_py.preprocess import THUMB_SIDE

    open_task(browser, live_server, page_task, slot="thumbs")
    # 640 x 480 stored, shown turned a quarter: its tile is 240 x 320
    turned = Image.fromarray(np.random.default_rng(2).integers(0, 255, (480, 640, 3), dtype=np.uint8))
    exif = turned.getexif()
    exif[0x0112] = 6
    turned.save(tmp_path / "turned.jpg", quality=90, exif=exif.tobytes())
    assert browser.execute_script("""return window.webfl.pyodide.runPython(`
import browser_py.preprocess as pre
whole = []
decode_whole = pre._bitmap
async def counted(data, *args):
    whole.append(len(data))
    return await decode_whole(data, *args)
pre._bitmap = counted
'ok'`)""") == "ok"
    smooth = np.clip(np.add.outer(np.arange(1200), np.arange(1600)) * 0.09, 0, 255).astype(np.uint8)
    grain = np.random.default_rng(1).integers(0, 40, (1200, 1600, 3))  # camera-like noise: ~650 KB
    photo = np.clip(np.stack([smooth, smooth[::-1], smooth[:, ::-1]], axis=-1) + grain, 0, 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=90)
    small = tmp_path / "small.png"
    small.write_bytes(digit_files(1, offset=700)[0][1])
    liar = bytearray((tmp_path / "photo.jpg").read_bytes())
    sof = liar.index(b"\xff\xc0")
    liar[sof + 5:sof + 9] = (60000).to_bytes(2, "big") * 2      # says 60000 x 60000 pixels
    (tmp_path / "liar.jpg").write_bytes(bytes(liar))
    browser.find_element(By.ID, "file-input").send_keys(
        "\n".join(str(tmp_path / n) for n in ("photo.jpg", "small.png", "liar.jpg", "turned.jpg")))
    message = wait_text(browser, "import-message", "3 images added")
    assert "liar.jpg: the image is too large (60000 x 60000 pixels)" in message
    # only the small PNG was decoded whole (to check it): both JPEGs at a reduced scale
    whole = browser.execute_script("return window.webfl.pyodide.runPython('whole').toJs()")
    assert whole == [small.stat().st_size], whole

    def tile_sizes():
        return browser.execute_script("""return Promise.all([...document.querySelectorAll('#grid .tile img')].map(
            (img) => img.decode().then(() => [img.naturalWidth, img.naturalHeight])));""")

    # the photo was hashed by Web Crypto, the digit by hashlib: both ids are the same sha256
    import hashlib

    from browser_py.sha256 import OFF_THREAD_BYTES

    ids = set(browser.execute_script("return [...document.querySelectorAll('#grid .tile')].map((t) => t.dataset.id)"))
    assert hashlib.sha256((tmp_path / "photo.jpg").read_bytes()).hexdigest()[:16] in ids
    assert hashlib.sha256(small.read_bytes()).hexdigest()[:16] in ids
    assert len((tmp_path / "photo.jpg").read_bytes()) >= OFF_THREAD_BYTES
    for _ in range(2):
        sizes = sorted(tile_sizes())
        assert sizes == [[28, 28], [THUMB_SIDE * 3 // 4, THUMB_SIDE], [THUMB_SIDE, THUMB_SIDE * 3 // 4]], sizes
        browser.refresh()
        assert wait_ready(browser) == "ready"
    # a photo deleted for good gives its tile picture back once the review pass ends (undo is
    # gone then); the others' pictures still load
    photo_id = hashlib.sha256((tmp_path / "turned.jpg").read_bytes()).hexdigest()[:16]  # noise: a large thumbnail
    pictures = browser.execute_script("""return Object.fromEntries([...document.querySelectorAll('#grid .tile')]
        .map((t) => [t.dataset.id, t.querySelector('img').src]))""")
    assert pictures[photo_id].startswith("blob:"), pictures[photo_id][:40]
    loads = """const [urls, done] = arguments;  // as a tile would: the page's CSP lets no fetch read blob: URLs
        Promise.all(urls.map((u) => { const img = new Image(); img.src = u; return img.decode().then(() => true, () => false); }))
            .then(done);"""
    browser.find_element(By.CSS_SELECTOR, f'.tile[data-id="{photo_id}"] button.delete').click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, f'.tile.deleted[data-id="{photo_id}"]'))
    assert browser.execute_async_script(loads, [pictures[photo_id]]) == [True]  # undo still shows it
    Select(browser.find_element(By.ID, "filter")).select_by_value("unlabelled")  # a new pass
    WebDriverWait(browser, 10).until(lambda d: not d.find_elements(By.CSS_SELECTOR, f'.tile[data-id="{photo_id}"]'))
    others = [url for item_id, url in pictures.items() if item_id != photo_id]
    assert browser.execute_async_script(loads, [pictures[photo_id], *others]) == [False] + [True] * len(others)


def test_reload_mid_training_keeps_labels_and_restarts_from_the_newest_model(browser, live_server, tmp_path):
    task = live_server.create_task("reload", classes=[str(d) for d in range(10)], min_labelled=10, batch_size=8,
                                   local_epochs=400)
    open_task(browser, live_server, task, slot="reload")
    archive = tmp_path / "r.zip"
    archive.write_bytes(image_folder_zip(digit_files(40, offset=640)))
    browser.find_element(By.ID, "file-input").send_keys(str(archive))
    wait_text(browser, "import-message", "40 images added")
    before = text_of(browser, "count-summary")
    browser.find_element(By.ID, "train-button").click()
    wait_text(browser, "train-text", "Pass ")
    # meanwhile another participant moves the global model on
    other = live_server.api("POST", "/api/join", {"code": task["join_code"]})
    import urllib.request

    model = urllib.request.urlopen(urllib.request.Request(
        f"{live_server.url}/api/tasks/{task['id']}/model", headers={"Authorization": f"Bearer {other['token']}"}))
    params = np.frombuffer(model.read(), "<f4")
    req = urllib.request.Request(
        f"{live_server.url}/api/tasks/{task['id']}/updates", data=(params * 0.99).astype("<f4").tobytes(),
        method="POST", headers={"Authorization": f"Bearer {other['token']}", "X-WebFL-Base-Version": "0",
                                "X-WebFL-Samples": "5", "Idempotency-Key": "other-1"})
    assert urllib.request.urlopen(req).status == 201
    browser.refresh()  # mid-training: the round is abandoned, nothing half-done is sent
    assert wait_ready(browser) == "ready"
    assert text_of(browser, "count-summary") == before
    assert "learned from 1 update" in text_of(browser, "status")
    live_server.api("PATCH", f"/api/admin/tasks/{task['id']}", {"config": {"local_epochs": 1}})
    browser.refresh()
    assert wait_ready(browser) == "ready"
    browser.find_element(By.ID, "train-button").click()
    wait_text(browser, "train-result", "it is now at version 2")
    m = live_server.api("GET", f"/api/tasks/{task['id']}/metrics?since=1")
    assert m["versions"][0]["updates"][0]["base_version"] == 1  # started from the newest model


def test_a_long_grid_is_drawn_in_slices_and_ends_whole(browser, live_server, page_task, tmp_path):
    """More tiles than one slice: the first are drawn at once, the rest just after; redraws
    that come while the rest is drawing leave one complete grid in the pass's order."""
    from browser_py.ui.participant_page import TILES_AT_ONCE

    open_task(browser, live_server, page_task, slot="long-grid")
    n = TILES_AT_ONCE * 2 + 30
    archive = tmp_path / "many.zip"
    archive.write_bytes(image_folder_zip(digit_files(n, offset=100)))
    browser.find_element(By.ID, "file-input").send_keys(str(archive))
    wait_text(browser, "import-message", f"{n} images added")
    state = browser.execute_async_script("""const done = arguments[0];
        window.webfl.pyodide.runPythonAsync(`
import asyncio
import browser_py.app as app
import js
ui = app.ui
ui._drawn = []        # as if the pass were new: a whole redraw
ui.new_pass()
early = js.document.querySelectorAll("#grid .tile").length
ui.refresh()          # while the rest is being drawn
await asyncio.sleep(0)
ui._drawn = []
ui.new_pass()         # and a whole new redraw on top
for _ in range(200):
    await asyncio.sleep(0.01)
    if ui._rest is None:
        break
drawn = [t.dataset.id for t in js.document.querySelectorAll("#grid .tile")]
[early, drawn, list(ui.order)]
`).then((r) => done(r.toJs()), (e) => done(String(e)));""")
    assert not isinstance(state, str), state
    early, drawn, order = state
    assert early == TILES_AT_ONCE
    assert drawn == order and len(drawn) == n == len(set(drawn))


PHOTOS_APART = """
const [done] = arguments;
(async () => {
const name = "webfl:test-photos-apart";
// a database as a version-1 page left it: a record carries its image's bytes
await new Promise((ok) => { const r = indexedDB.deleteDatabase(name); r.onsuccess = r.onerror = ok; });
await new Promise((ok, bad) => {
  const r = indexedDB.open(name, 1);
  r.onupgradeneeded = () => { r.result.createObjectStore("items", {keyPath: "id"});
                              r.result.createObjectStore("meta", {keyPath: "key"}); };
  r.onsuccess = () => { const tx = r.result.transaction("items", "readwrite");
    tx.objectStore("items").put({id: "old", name: "old.png", label: "3", split: "train",
                                 data: new Uint8Array([1, 2, 3])});
    tx.oncomplete = () => { r.result.close(); ok(); }; tx.onerror = bad; };
  r.onerror = bad;
});
window.webfl.pyodide.runPythonAsync(`
import dataclasses, json
from browser_py.dataset import Item
from browser_py.idb import IndexedDBStore

NAME = "webfl:test-photos-apart"
seen = {}

async def raw(store, op, *args):  # straight to IndexedDB, past the store's own bookkeeping
    from browser_py.idb import _wait
    tx = s._db.transaction(store, "readwrite" if op in ("put", "delete") else "readonly")
    return await _wait(getattr(tx.objectStore(store), op)(*args), "success")

s = await IndexedDBStore(NAME).open()
old = (await s.items())[0]
seen["legacy"] = [old["id"], old["label"], list(old["data"])]
await s.put_items([dict(old, label="4")])  # the old record moves its bytes to "photos"
record = await raw("items", "get", "old")
seen["moved"] = [hasattr(record, "data") and record.data is not None, list((await raw("photos", "get", "old")).data.to_py())]

new = dataclasses.asdict(Item(id="new", name="new.png", data=b"abc"))
await s.put_items([new])
import js
from browser_py.jsvalues import uint8array
marker = js.Object.new()
marker.id, marker.data = "new", uint8array(b"zzz")
await raw("photos", "put", marker)
await s.put_items([dict(new, label="4", suggestion="4")])  # a label: the photo is not written again
seen["relabelled"] = [(await s.get_item("new"))["label"], (await s.get_item("new"))["data"].decode()]

again = await IndexedDBStore(NAME).open()  # a reload
seen["reloaded"] = sorted((i["id"], i["label"], i["data"].decode("latin-1")) for i in await again.items())
await again.delete_item("old")
seen["after_delete"] = [len(await again.items()), int(await raw("photos", "count"))]
import browser_py.idb as idb
slice_bytes, idb.PUT_SLICE_BYTES = idb.PUT_SLICE_BYTES, 2  # one photo per slice: each next slice goes in from the last one's callback
many = [dataclasses.asdict(Item(id=f"m{i}", name=f"m{i}.png", data=bytes([i]) * 3)) for i in range(5)]
await again.put_items(many)
idb.PUT_SLICE_BYTES = slice_bytes
reread = await (await IndexedDBStore(NAME).open()).items()
seen["sliced"] = sorted(i["data"].hex() for i in reread if i["id"].startswith("m"))
await again.clear_items()
seen["after_clear"] = [len(await again.items()), int(await raw("photos", "count"))]
json.dumps(seen)
`).then((r) => done(r), (e) => done("ERROR: " + e.message));
})().catch((e) => done("ERROR: " + e));
"""


def test_photos_are_stored_apart_and_written_once(browser, live_server, page_task):
    """A record rewritten for a label does not copy its photo again (issue 14: accept all held
    the page); a version-1 record, carrying its bytes, is read and moved when next written."""
    import json

    open_task(browser, live_server, page_task)
    result = browser.execute_async_script(PHOTOS_APART)
    assert not result.startswith("ERROR"), result
    seen = json.loads(result)
    assert seen["legacy"] == ["old", "3", [1, 2, 3]]
    assert seen["moved"] == [False, [1, 2, 3]]
    # the page's own marker stayed: relabelling wrote the record, not the photo
    assert seen["relabelled"] == ["4", "zzz"]
    assert seen["reloaded"] == [["new", "4", "zzz"], ["old", "4", "\x01\x02\x03"]]
    assert seen["after_delete"] == [1, 1]
    assert seen["sliced"] == [bytes([i]).hex() * 3 for i in range(5)]
    assert seen["after_clear"] == [0, 0]
