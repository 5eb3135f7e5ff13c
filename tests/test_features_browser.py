"""The frozen feature extractor in the browser (wasm, and WebGPU on a software adapter)
gives the same features as onnxruntime in CPython."""
from __future__ import annotations

import shutil
import tempfile

import numpy as np
import pytest

from client_helpers import png
from live import wait_ready

pytestmark = pytest.mark.browser

SCRIPT = """
const [images, preferGpu, done] = arguments;
const py = window.webfl.pyodide;
py.globals.set("images_js", images);
py.globals.set("prefer_gpu", preferGpu);
py.runPythonAsync(`
from browser_py import features as F
from browser_py.preprocess import InputSpec, pixels_browser
import browser_py.app as app
p = app.participant
spec = InputSpec.from_manifest(p.manifest)
model = await p.client.bundle().read(p.manifest["features"]["file"])
fx = await F.WebFeatures.create(p.manifest, model, prefer_webgpu=prefer_gpu, allow_software_gpu=prefer_gpu)
keyed = [(str(i), await pixels_browser(bytes(d), spec)) for i, d in enumerate(images_js.to_py())]
out = await fx.extract(keyed)
[fx.backend, [list(o) for o in out], fx.off_main_thread and fx._ort.env.wasm.proxy]
`).then((r) => done(r.toJs())).catch((e) => done("ERROR: " + e.message));
"""


@pytest.fixture(scope="module")
def pets(live_server):
    return live_server.create_task("pets", model="mobilenet_v2", classes=["cat", "dog"], min_labelled=4)


def _images():
    rng = np.random.default_rng(9)
    smooth = np.clip(np.add.outer(np.arange(224), np.arange(224)) * 0.5, 0, 255).astype(np.uint8)
    return [png(np.stack([smooth, smooth.T, 255 - smooth], -1)),
            png(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8))]


def _native(live_server, pets, images):
    import asyncio

    from browser_py.features import NativeFeatures
    from browser_py.preprocess import InputSpec, pixels_pillow
    from export import load_manifest

    bundle = live_server.data_dir / "bundles" / pets["id"]
    manifest = load_manifest(bundle)
    fx = NativeFeatures(manifest, (bundle / "features.onnx").read_bytes())
    spec = InputSpec.from_manifest(manifest)
    out = asyncio.run(fx.extract([(str(i), pixels_pillow(d, spec)) for i, d in enumerate(images)]))
    return [np.frombuffer(o, np.float32) for o in out]


def test_wasm_features_match_native(browser, live_server, pets):
    images = _images()
    browser.get(f"{live_server.url}/?join={pets['join_code']}")
    assert wait_ready(browser) == "ready"
    result = browser.execute_async_script(SCRIPT, [list(d) for d in images], False)
    assert not isinstance(result, str), result
    backend, web, in_worker = result
    assert backend.startswith("wasm") and "in a worker" in backend
    assert in_worker is True  # onnxruntime-web 1.30 runs it in its own worker: the page stays free
    for w, n in zip(web, _native(live_server, pets, images)):
        assert len(w) == 1280
        np.testing.assert_allclose(np.asarray(w, np.float32), n, rtol=1e-3, atol=1e-3)


def test_webgpu_features_match_native(live_server, pets):
    """SwiftShader's software adapter proves the WebGPU code path (not its speed)."""
    from experiments.browser import start_chrome

    profile = tempfile.mkdtemp(prefix="webfl-gpu-")
    driver = start_chrome(profile, webgpu=True)
    driver.set_script_timeout(240)
    try:
        driver.get(f"{live_server.url}/?join={pets['join_code']}&slot=gpu")
        assert wait_ready(driver) == "ready"
        has_adapter = driver.execute_async_script(
            "const done = arguments[0]; (navigator.gpu ? navigator.gpu.requestAdapter() : Promise.resolve(null))"
            ".then((a) => done(!!a)).catch(() => done(false));")
        if not has_adapter:
            pytest.skip("this Chromium offers no WebGPU adapter even with --enable-unsafe-webgpu")
        images = _images()[:1]
        result = driver.execute_async_script(SCRIPT, [list(d) for d in images], True)
        assert not isinstance(result, str), result
        backend, web, in_worker = result
        assert backend == "WebGPU" and in_worker is False
        np.testing.assert_allclose(np.asarray(web[0], np.float32), _native(live_server, pets, images)[0],
                                   rtol=1e-3, atol=1e-3)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_mobilenet_task_trains_in_the_page(browser, live_server, pets, tmp_path):
    """Photos -> canvas -> features (wasm, cached) -> head training -> update."""
    import io
    import zipfile

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    rng = np.random.default_rng(2)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(12):
            label = ("cat", "dog")[i % 2]
            base = np.zeros((96, 128, 3), np.uint8)
            base[..., 0 if label == "cat" else 2] = 200
            base = np.clip(base + rng.integers(0, 50, base.shape), 0, 255).astype(np.uint8)
            zf.writestr(f"pets/{label}/{i}.png", png(base))
    archive = tmp_path / "pets.zip"
    archive.write_bytes(buf.getvalue())
    browser.get(f"{live_server.url}/?join={pets['join_code']}&slot=page")
    assert wait_ready(browser) == "ready"
    assert "features: wasm" in browser.execute_script("return document.getElementById('tech-text').textContent")
    browser.find_element(By.ID, "file-input").send_keys(str(archive))
    WebDriverWait(browser, 60).until(lambda d: "12 images added" in d.find_element(By.ID, "import-message").text)
    before = live_server.api("GET", f"/api/tasks/{pets['id']}")["version"]
    browser.find_element(By.ID, "train-button").click()
    WebDriverWait(browser, 120).until(
        lambda d: "learned from your" in d.find_element(By.ID, "train-result").text)
    assert live_server.api("GET", f"/api/tasks/{pets['id']}")["version"] == before + 1


EXPLAIN_IN_PAGE = """
const [itemId, done] = arguments;
window.webfl.pyodide.globals.set("item_id", itemId);
window.webfl.pyodide.runPythonAsync(`
import json
import browser_py.app as app
p = app.participant
json.dumps([p.version, await p.explain(p.dataset.get(item_id))])
`).then((r) => done(JSON.parse(r))).catch((e) => done("ERROR: " + e.message));
"""


def test_why_this_label_heatmap_in_the_page_matches_cpython(browser, live_server, pets, tmp_path):
    """The "why this label?" dialog draws the class activation map the browser computed, and
    it is the map CPython computes from the same photo and the same global model."""
    from array import array

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from browser_py.explain import class_activation_map, head_weights
    from browser_py.features import NativeFeatures
    from browser_py.preprocess import InputSpec, pixels_pillow
    from export import load_manifest
    from live import ARTIFACTS, accessibility_problems

    photos = _images()
    for i, data in enumerate(photos):
        (tmp_path / f"photo{i}.png").write_bytes(data)
    browser.get(f"{live_server.url}/?join={pets['join_code']}&slot=why")
    assert wait_ready(browser) == "ready"
    # what the participant is told while features are computed: in the background after the
    # import, or by Suggest when it needs them first
    browser.execute_script("""window.suggestSaid = []; window.suggestBar = []; window.prepareSaid = [];
new MutationObserver(() => { window.suggestSaid.push(document.getElementById('suggest-message').textContent);
  const bar = document.getElementById('suggest-progress'); window.suggestBar.push([bar.hidden, bar.value]); })
  .observe(document.getElementById('suggest-message'), {childList: true, characterData: true, subtree: true});
new MutationObserver(() => window.prepareSaid.push(document.getElementById('prepare-message').textContent))
  .observe(document.getElementById('prepare-message'), {childList: true, characterData: true, subtree: true});""")
    browser.find_element(By.ID, "file-input").send_keys("\n".join(str(tmp_path / f"photo{i}.png") for i in range(2)))
    WebDriverWait(browser, 60).until(lambda d: "2 images added" in d.find_element(By.ID, "import-message").text)
    browser.find_element(By.ID, "suggest").click()
    WebDriverWait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".tile.suggested")) == 2)
    # the photos' features were computed first, and the participant saw how far it got
    said, prepared = browser.execute_script("return [window.suggestSaid, window.prepareSaid]")
    looked = [m for m in said if m.startswith("Looking at your photos: ")]
    assert looked or "Getting your photos ready for label suggestions: 1 of 2." in prepared, (said, prepared)
    if looked:  # Suggest computed some: its bar went to the end
        assert looked[-1].split(": ")[1] in ("1 of 1", "2 of 2"), looked
        assert [False, 1] in browser.execute_script("return window.suggestBar")
    assert browser.execute_script("return document.getElementById('suggest-progress').hidden")
    assert prepared[-1:] in ([], [""])  # the background line is cleared once it is done
    tile = browser.find_elements(By.CSS_SELECTOR, ".tile.suggested")[0]
    item_id = tile.get_attribute("data-id")
    button = tile.find_element(By.CSS_SELECTOR, "button.why-button")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    WebDriverWait(browser, 60).until(lambda d: "pushed it most" in d.find_element(By.ID, "why-text").text)
    assert browser.execute_script("return document.getElementById('why').open")
    peak = int(browser.find_element(By.ID, "why-canvas").get_attribute("data-peak"))
    (ARTIFACTS / "experience").mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "experience" / "desktop-12-why-this-label.png"))
    assert not accessibility_problems(browser)
    version, web = browser.execute_async_script(EXPLAIN_IN_PAGE, item_id)
    # the same photo, the same global model, in CPython
    bundle = live_server.data_dir / "bundles" / pets["id"]
    manifest = load_manifest(bundle)
    data = next(d for d in photos if __import__("hashlib").sha256(d).hexdigest()[:16] == item_id)
    fx = NativeFeatures(manifest, (bundle / "features.onnx").read_bytes())
    import asyncio

    fmap = asyncio.run(fx.feature_map(pixels_pillow(data, InputSpec.from_manifest(manifest))))
    raw = live_server.raw("GET", f"/api/tasks/{pets['id']}/model")
    assert live_server.api("GET", f"/api/tasks/{pets['id']}")["version"] == version
    weights, _ = head_weights(manifest, array("f", raw))
    native = class_activation_map(fmap, [1280, 7, 7], weights, manifest["classes"].index(web["label"]))
    np.testing.assert_allclose(web["grid"], native, atol=0.03)
    assert peak == int(np.argmax(web["grid"]))
    browser.find_element(By.ID, "why-close").click()
    assert not browser.execute_script("return document.getElementById('why').open")
