"""Client speed: the browser (Python in Pyodide driving onnxruntime-web) against native
onnxruntime-training, the interop overhead against plain JS, and page start-up.

Run with ``make bench``. One run measures everything side by side on the same bundle,
batch size and thread count, and prints ratios; assertions only check numbers exist.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from array import array

import numpy as np
import pytest
from experiments.browser import start_chrome
from live import LiveServer, wait_ready, wait_snapshot_kept

BATCH, STEPS = 32, 40
# passes over the STEPS batches per timed block: the head's steps take ~0.3 ms, and a block
# of 40 of them (~12 ms) moved by half from one block to the next here
PASSES = {"digits_cnn": 1, "mobilenet_v2": 20}

# The page's wasm keeps compiling in the background (tier-up) for a few seconds, so every
# way warms up for WARM_SECONDS first; then blocks (STEPS steps, PASSES times) are taken in
# turn with native ones (the machine's speed drifts; blocks in turn see the same machine).
WARM_SECONDS, BLOCKS = 4.0, 7
# The page's part of the training bench: set up once, then one block per call.
TRAIN_SETUP = """
const [batch, steps, passes, warmSeconds, done] = arguments;
const py = window.webfl.pyodide;
py.globals.set("B", batch); py.globals.set("S", steps); py.globals.set("E", passes);
py.runPythonAsync(`
import random
from array import array
import js
from browser_py.jsvalues import bigint64array, float32array
from browser_py.ort_web import OrtWebTrainer
from browser_py.trainer import LocalTrainer
import browser_py.app as app
p = app.participant
trainer = await OrtWebTrainer.create(p.client.bundle())
n = 1
for d in trainer.input_shape:
    n *= d
rng = random.Random(0)
# a training set of S batches of distinct samples, one epoch: every sample is read once
data = array('f', [rng.random() * 255 for _ in range(S * B * n)])
xs = [data[i * n:(i + 1) * n] for i in range(S * B)]
ys = [rng.randrange(len(p.classes)) for _ in xs]
local = LocalTrainer(trainer, B)

async def py_block(passes=E):  # as the page trains: LocalTrainer.fit shuffles and hands over slices
    # (a later fit on the same cached arrays reuses their JS copy, as a later round does)
    t = js.performance.now()
    await local.fit(xs, ys, epochs=passes, seed=0)
    return (js.performance.now() - t) / (S * passes)

x0, y0 = data[:B * n], ys[:B]
async def each_block():  # before issue 14: Python awaits every step, one batch repeated
    t = js.performance.now()
    for _ in range(S * E):
        await trainer.train_step(x0, y0)
    return (js.performance.now() - t) / (S * E)

js.window.pyBlock = py_block
js.window.eachBlock = each_block
js.window.benchSession = trainer._session
js.window.benchRows = float32array(data)
js.window.benchLabels = bigint64array(array('q', ys))
js.window.benchShape = js.Array.from_(trainer.input_shape)
`).then(() => (async () => {
  // plain JS: the same training set held in JS, shuffled, each batch gathered, every step awaited
  const s = window.benchSession, rows = window.benchRows, labels = window.benchLabels;
  const shape = Array.from(window.benchShape), per = shape.reduce((a, b) => a * b, 1);
  const step = async (x, y) => {
    await s.runTrainStep({input: new ort.Tensor("float32", x, [y.length, ...shape]),
                          labels: new ort.Tensor("int64", y, [y.length])});
    await s.runOptimizerStep(); await s.lazyResetGrad();
  };
  const jsBlock = async () => {
    const t = performance.now(), order = Array.from({length: labels.length}, (_, i) => i);
    for (let e = 0; e < passes; e++) {
      for (let i = order.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [order[i], order[j]] = [order[j], order[i]]; }
      for (let b = 0; b < steps; b++) {
        const x = new Float32Array(batch * per), y = new BigInt64Array(batch);
        for (let j = 0; j < batch; j++) {
          const i = order[b * batch + j];
          x.set(rows.subarray(i * per, (i + 1) * per), j * per); y[j] = labels[i];
        }
        await step(x, y);
      }
    }
    return (performance.now() - t) / (steps * passes);
  };
  // the earlier anchor: one batch repeated from a hot buffer, nothing gathered
  const x0 = rows.slice(0, batch * per), y0 = labels.slice(0, batch);
  const oneBlock = async () => { const t = performance.now(); for (let i = 0; i < steps * passes; i++) await step(new Float32Array(x0), y0);
                                 return (performance.now() - t) / (steps * passes); };
  window.benchTrainBlocks = {py: () => window.pyBlock(), js: jsBlock, each: () => window.eachBlock(), one: oneBlock};
  const until = performance.now() + warmSeconds * 1000;
  while (performance.now() < until) { await step(x0, y0); }
  return await window.pyBlock(1);  // one pass of a fit on a set new to it: copied to JS first
})()).then(done, (e) => done("ERROR: " + e.message));
"""

TRAIN_BLOCK = """
const [way, done] = arguments;
window.benchTrainBlocks[way]().then(done, (e) => done("ERROR: " + e.message));"""
PAGE_WAYS = ("py", "js", "each", "one")


class _NativeSteps:
    """Native onnxruntime-training on the same bundle and thread count, one batch repeated,
    timed in blocks of STEPS * ``passes`` steps (ms per step) between the page's blocks."""

    def __init__(self, bundle_dir, classes: int, threads: int, passes: int = 1) -> None:
        from browser_py.bundle_source import DirectoryBundle
        from browser_py.native.trainer import NativeTrainer

        self.steps = STEPS * passes
        self.loop = asyncio.new_event_loop()
        self.trainer = self.loop.run_until_complete(NativeTrainer.create(DirectoryBundle(bundle_dir), threads))
        n = int(np.prod(self.trainer.input_shape))
        rng = np.random.default_rng(0)
        self.x = array("f", (rng.random(BATCH * n) * 255).astype(np.float32).tobytes())
        self.y = [int(v) for v in rng.integers(0, classes, BATCH)]

    def block(self, warm_seconds: float = 0) -> float:
        async def go() -> float:
            until = time.perf_counter() + warm_seconds
            while time.perf_counter() < until:
                await self.trainer.train_step(self.x, self.y)
            t = time.perf_counter()
            for _ in range(self.steps):
                await self.trainer.train_step(self.x, self.y)
            return (time.perf_counter() - t) / self.steps * 1e3

        return self.loop.run_until_complete(go())

    def close(self) -> None:
        self.loop.close()


def _in_turn(ways: tuple, rep: int) -> tuple:
    """The ways, starting with another one each repetition (none always pays for going first)."""
    k = rep % len(ways)
    return ways[k:] + ways[:k]


def _driver(profile: str):
    return start_chrome(profile)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LiveServer(tmp_path_factory.mktemp("bench-client"))
    yield s
    s.stop()


THREADS = sorted({1, 2, min(4, os.cpu_count() or 1)})  # 4 only where the machine has the cores


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("model, classes", [("digits_cnn", 10), ("mobilenet_v2", 2)])
def test_training_speed(server, model, classes, threads):
    if model == "mobilenet_v2" and threads != 2:
        pytest.skip("the head's steps are too small for threads to matter")
    names = [str(i) for i in range(classes)] if model == "digits_cnn" else ["cat", "dog"]
    task = server.create_task(f"bench {model}", model=model, classes=names)
    native = _NativeSteps(server.data_dir / "bundles" / task["id"], classes, threads, PASSES[model])
    profile = tempfile.mkdtemp()
    driver = _driver(profile)
    driver.set_script_timeout(600)
    times: dict[str, list[float]] = {}
    try:
        driver.get(f"{server.url}/?join={task['join_code']}&threads={threads}")
        assert wait_ready(driver) == "ready"
        assert driver.execute_script("return ort.env.wasm.numThreads") == threads
        wait_snapshot_kept(driver)  # the start-up snapshot's worker would share the cores
        first_ms = driver.execute_async_script(TRAIN_SETUP, BATCH, STEPS, PASSES[model], WARM_SECONDS)
        assert not str(first_ms).startswith("ERROR"), first_ms
        native.block(warm_seconds=1.0)
        ways = (*PAGE_WAYS, "native")
        for rep in range(BLOCKS):  # in turn, starting with another way each time
            for way in _in_turn(ways, rep):
                ms = native.block() if way == "native" else driver.execute_async_script(TRAIN_BLOCK, way)
                assert not str(ms).startswith("ERROR"), ms
                times.setdefault(way, []).append(float(ms))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        native.close()
    py_ms, js_ms, each_ms, one_ms, native_ms = (statistics.median(times[way]) for way in ways)
    head = "whole CNN" if model == "digits_cnn" else "head on 1280-d features"
    print(f"\n| {model} ({head}), batch {BATCH}, {threads} thread{'s' if threads > 1 else ''} | browser (Pyodide) {py_ms:.3f} ms/step = "
          f"{BATCH / py_ms * 1e3:,.0f} samples/s | plain JS, same batches {js_ms:.3f} ms/step | native {native_ms:.3f} ms/step = "
          f"{BATCH / native_ms * 1e3:,.0f} samples/s | browser/native throughput {native_ms / py_ms:.2f} | "
          f"interop overhead {(py_ms / js_ms - 1) * 100:+.0f}% (target within 10%) | the first fit on the set "
          f"(copied to JS) {first_ms:.3f} ms/step, {(first_ms / js_ms - 1) * 100:+.0f}% | Python waiting on every step, "
          f"one batch repeated (before) {each_ms:.3f} ms/step | plain JS, one batch repeated {one_ms:.3f} ms/step | "
          f"blocks of {STEPS * PASSES[model]} steps taken in turn with native, medians of {BLOCKS} (browser {min(times['py']):.3f}-{max(times['py']):.3f}, "
          f"native {min(times['native']):.3f}-{max(times['native']):.3f} ms/step) |")
    assert py_ms > 0 and js_ms > 0 and native_ms > 0


STAGES = ("python", "client", "task", "trainer", "features", "photos", "ready")
COLD_VISITS = 3
STAGE_TIMES = """const marks = Object.fromEntries(performance.getEntriesByType("mark")
  .filter((m) => m.name.startsWith("webfl:")).map((m) => [m.name.slice(6), m.startTime / 1000]));
return marks;"""


@pytest.mark.parametrize("model", ["digits_cnn", "mobilenet_v2"])
def test_page_start_up(server, model):
    """Page open -> ready with a fresh profile (cold: the median of COLD_VISITS profiles), then
    reloads (warm) restoring the Python snapshot the first visit kept, then reloads with it
    deleted (warm, Python started afresh: the anchor), and where the time goes: the start-up
    marks (``webfl:<stage>``)."""
    classes = [str(i) for i in range(10)] if model == "digits_cnn" else ["cat", "dog"]
    task = server.create_task(f"bench start {model}", model=model, classes=classes)
    url = f"{server.url}/?join={task['join_code']}"
    profile = tempfile.mkdtemp()
    driver = _driver(profile)
    driver.set_script_timeout(60)
    runs: dict[str, list[tuple[float, dict]]] = {"cold": [], "snapshot": [], "fresh": []}

    def open_page(kind: str) -> None:
        t = time.perf_counter()
        driver.get(url)
        assert wait_ready(driver) == "ready"
        runs[kind].append((time.perf_counter() - t, driver.execute_script(STAGE_TIMES)))
        started = driver.execute_script("return document.documentElement.dataset.webflPython")
        assert started == ("snapshot" if kind == "snapshot" else "fresh"), (kind, started)

    try:
        open_page("cold")
        wait_snapshot_kept(driver)
        for _ in range(3):
            open_page("snapshot")
        for _ in range(3):
            driver.execute_async_script(
                "import('/static/js/python_snapshot.mjs').then((m) => m.dropSnapshot()).then(() => arguments[0]())")
            open_page("fresh")
        for _ in range(COLD_VISITS - 1):  # one cold visit varied by 0.5 s from run to run here
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
            profile = tempfile.mkdtemp()
            driver = _driver(profile)
            driver.set_script_timeout(60)
            open_page("cold")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

    def steps(marks: dict) -> str:
        out, last = [], 0.0
        for stage in STAGES:
            if stage in marks:
                out.append(f"{stage} +{marks[stage] - last:.2f}")
                last = marks[stage]
        return ", ".join(out)

    def best(kind: str) -> tuple[float, dict]:
        return min(runs[kind], key=lambda run: run[0])

    (warm, warm_marks), (fresh, fresh_marks) = best("snapshot"), best("fresh")
    cold, cold_marks = sorted(runs["cold"], key=lambda run: run[0])[len(runs["cold"]) // 2]  # the median visit
    print(f"\n| page open -> ready, {model} | cold {cold:.2f} s, the median of {len(runs['cold'])} fresh profiles "
          f"(target <= 3; all: {', '.join(f'{t:.2f}' for t, _ in runs['cold'])}) | warm, Python restored from "
          f"its snapshot {warm:.2f} s (target <= 1; all: {', '.join(f'{t:.2f}' for t, _ in runs['snapshot'])}) | "
          f"warm, Python started afresh {fresh:.2f} s (all: {', '.join(f'{t:.2f}' for t, _ in runs['fresh'])}) | "
          f"cold: {steps(cold_marks)} | warm, restored: {steps(warm_marks)} | warm, afresh: {steps(fresh_marks)} |")
    assert cold > 0 and warm > 0 and fresh > 0


def _photos_zip(n: int, folders: bool = True) -> bytes:
    """``n`` camera-like photos (640x480 JPEG) in two class folders (or none: unlabelled)."""
    import io
    import zipfile

    from PIL import Image

    rng = np.random.default_rng(5)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(n):
            label = ("cat", "dog")[i % 2]
            base = np.zeros((480, 640, 3), np.uint8)
            base[..., 0 if label == "cat" else 2] = 180
            base = np.clip(base + rng.integers(0, 60, base.shape), 0, 255).astype(np.uint8)
            out = io.BytesIO()
            Image.fromarray(base).save(out, "JPEG", quality=85)
            zf.writestr(f"photos/{label}/{i}.jpg" if folders else f"photos/IMG_{i:04d}.jpg", out.getvalue())
    return buf.getvalue()


REPEATS = 5  # rounds of ~0.1 s vary by tens of ms here: the round figures are medians
# A round timed in the page, from the click to the round's end (webflRoundsEnded moving): a
# driver polling every 20 ms could not tell 0.07 s from 0.09 s.
ROUND_TIMED = """const done = arguments[0];
const root = document.documentElement, before = root.dataset.webflRoundsEnded || "0", start = performance.now();
new MutationObserver((_, seen) => {
  if ((root.dataset.webflRoundsEnded || "0") !== before) { seen.disconnect(); done((performance.now() - start) / 1000); }
}).observe(root, {attributes: true, attributeFilter: ["data-webfl-rounds-ended"]});
document.getElementById("train-button").click();"""
# resolves once the page has had an idle moment after two frames (drawn, nothing queued)
SETTLED = """const done = arguments[0];
requestAnimationFrame(() => requestAnimationFrame(() => requestIdleCallback(() => done("settled"))));"""


def test_round_after_a_reload(server, tmp_path):
    """MobileNetV2 head, 60 photos: the first round computes features; rounds after a reload
    (clicked once the page settled) find them in IndexedDB, and the next round in the same
    page reuses them from memory (in pairs). Also shown: a round clicked the moment the page
    said ready."""
    from selenium.webdriver.common.by import By

    # the same participant sends many rounds in a row: the change bounds are for crowds
    task = server.create_task("bench rounds", model="mobilenet_v2", classes=["cat", "dog"], min_labelled=4,
                              local_epochs=5, batch_size=16, max_change_ratio=None, max_change_vs_recent=None,
                              direction_guard=False)
    archive = tmp_path / "photos.zip"
    archive.write_bytes(_photos_zip(60))
    profile = tempfile.mkdtemp()
    driver = _driver(profile)
    driver.set_script_timeout(300)

    def words(id_: str) -> str:
        return driver.find_element(By.ID, id_).text

    def round_seconds() -> float:
        seconds = driver.execute_async_script(ROUND_TIMED)
        assert "learned from your" in words("train-result"), (words("train-text"), words("train-result"))
        return seconds

    try:
        driver.get(f"{server.url}/?join={task['join_code']}")
        assert wait_ready(driver) == "ready"
        driver.find_element(By.ID, "file-input").send_keys(str(archive))
        deadline = time.perf_counter() + 300
        while "60 images added" not in words("import-message"):
            assert time.perf_counter() < deadline, words("import-message")
            time.sleep(0.1)
        first = round_seconds()
        driver.refresh()
        assert wait_ready(driver) == "ready"
        at_ready = round_seconds()  # clicked the moment the page says ready: its start-up ends meanwhile
        same_page, after_reload = [], []
        for _ in range(REPEATS):  # in pairs, so that a drift in the machine's speed hits both
            driver.refresh()
            assert wait_ready(driver) == "ready"
            # a participant's first click comes after the page has drawn and settled (its last
            # start-up work took ~0.2 s here after "ready": a round clicked at once paid for it)
            assert driver.execute_async_script(SETTLED) == "settled"
            after_reload.append(round_seconds())
            assert driver.execute_async_script(SETTLED) == "settled"
            same_page.append(round_seconds())
        # the anchor: the same after a reload when features are not kept (as before issue 14)
        dropped = driver.execute_async_script("""const done = arguments[0];
            window.webfl.pyodide.runPythonAsync(`
import browser_py.app as app
ds = app.participant.dataset
for item in ds.items.values():
    item.features = item.features_of = None
await ds._save(*ds.items.values())
len(ds.items)
`).then(done, (e) => done(String(e)));""")
        assert dropped == 60, dropped
        driver.refresh()
        assert wait_ready(driver) == "ready"
        not_kept = round_seconds()
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    print(f"\n| MobileNetV2 head, 60 photos, 5 epochs | first round (features computed) {first:.2f} s | "
          f"again in the same page {statistics.median(same_page):.3f} s | after a reload {statistics.median(after_reload):.3f} s | "
          f"after reload / same page {statistics.median(after_reload) / statistics.median(same_page):.2f} (target <= 1.2) | "
          f"clicked at once at ready {at_ready:.2f} s | "
          f"after a reload without kept features (before) {not_kept:.2f} s | medians of {REPEATS} pairs, timed in the page "
          f"(same page {', '.join(f'{t:.3f}' for t in same_page)}; after a reload {', '.join(f'{t:.3f}' for t in after_reload)}) |")
    assert first > 0 and min(same_page) > 0 and min(after_reload) > 0


LONG_TASKS = """window.webflLongTasks = []; window.webflLongTaskStarts = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) {
  window.webflLongTasks.push(e.duration); window.webflLongTaskStarts.push([e.startTime, e.duration]); } })
  .observe({type: "longtask"});"""

# The way before issue 14 (kept as the anchor): one transaction per image, one decode at a time.
ONE_BY_ONE = """const [chunk, atOnce, done] = arguments;
window.webfl.pyodide.runPythonAsync(`
import browser_py.dataset as d
d.IMPORT_CHUNK, d.DECODE_AT_ONCE, d.SMALL_DECODE_AT_ONCE = ${chunk}, ${atOnce}, ${atOnce}
`).then(() => done("ok"), (e) => done(String(e)));"""


def _camera_photos_zip(n: int, size=(4032, 3024)) -> bytes:
    """``n`` 12-megapixel JPEGs (a phone camera's size) with smooth content, ~1-2 MB each."""
    import io
    import zipfile

    from PIL import Image

    rng = np.random.default_rng(7)
    w, h = size
    yy, xx = np.mgrid[0:h:8, 0:w:8]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n):
            label = ("cat", "dog")[i % 2]
            small = np.stack([np.sin(xx / (40 + 7 * c + i)) * 90 + 128 + rng.normal(0, 12, xx.shape)
                              for c in range(3)], axis=-1).clip(0, 255).astype(np.uint8)
            photo = Image.fromarray(small).resize(size, Image.BILINEAR)
            out = io.BytesIO()
            photo.save(out, "JPEG", quality=88)
            zf.writestr(f"photos/{label}/IMG_{i:04d}.jpg", out.getvalue())
    return buf.getvalue()


def _digits_zip(n: int) -> bytes:
    from client_helpers import digit_files, image_folder_zip

    return image_folder_zip(digit_files(n))


@pytest.mark.parametrize("what, model, n", [("small images (28x28 PNG digits)", "digits_cnn", 2000),
                                            ("camera photos (12 MP JPEG)", "mobilenet_v2", 40)])
def test_import_speed(server, tmp_path, what, model, n):
    """Images from one zip into the page (decoded, checked, thumbnails made, on disk), the
    new way beside the way before (one write per image, one decode at a time), once the page
    has settled as a participant's has by the time they have chosen files. Also printed: the
    new way the instant a first visit is ready, while V8 still compiles the hot WebAssembly to
    optimised code in the background (one unit of that work took 2.1 s of one core here; later
    visits of the same profile showed no such work)."""
    from selenium.webdriver.common.by import By

    classes = [str(i) for i in range(10)] if model == "digits_cnn" else ["cat", "dog"]
    archive = tmp_path / "images.zip"
    archive.write_bytes(_digits_zip(n) if model == "digits_cnn" else _camera_photos_zip(n))
    results = {}
    for way, (chunk, at_once) in (("before", (1, 1)), ("now", (None, None)), ("at once", (None, None))):
        task = server.create_task(f"bench import {way}", model=model, classes=classes)
        profile = tempfile.mkdtemp()
        driver = _driver(profile)
        try:
            driver.get(f"{server.url}/?join={task['join_code']}")
            assert wait_ready(driver) == "ready"
            if way != "at once":
                wait_snapshot_kept(driver)  # the page has settled: nothing else shares the cores
            if chunk is not None:
                assert driver.execute_async_script(ONE_BY_ONE, chunk, at_once) == "ok"
            driver.execute_script(LONG_TASKS)
            start = time.perf_counter()
            driver.find_element(By.ID, "file-input").send_keys(str(archive))
            while f"{n} images added" not in driver.find_element(By.ID, "import-message").text:
                assert time.perf_counter() - start < 600, driver.find_element(By.ID, "import-message").text
                time.sleep(0.05)
            seconds = time.perf_counter() - start
            time.sleep(1)  # a long grid draws its first tiles at once and the rest just after
            thumbs = driver.execute_script(
                "return [...document.querySelectorAll('#grid img')].filter((i) => i.src).length")
            longest = driver.execute_script("return Math.max(0, ...window.webflLongTasks)")
            results[way] = (seconds, thumbs, longest)
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
    (before, _, long_before), (now, thumbs, long_now) = results["before"], results["now"]
    at_once, _, long_at_once = results["at once"]
    print(f"\n| import {n} {what} | now {now:.2f} s = {n / now:,.0f} images/s | before (one write per image) "
          f"{before:.2f} s = {n / before:,.0f} images/s | speed-up {before / now:.1f}x | tiles shown {thumbs} | "
          f"longest main-thread task {long_now:.0f} ms (before {long_before:.0f} ms) | the instant a first "
          f"visit is ready: {at_once:.2f} s = {n / at_once:,.0f} images/s, longest task {long_at_once:.0f} ms |")
    assert now > 0 and before > 0


# Seconds the participant looks at their photos between the import and "Suggest labels":
# the page prepares features in the background meanwhile (0: they click at once).
PAUSES = (0, 12)


@pytest.mark.parametrize("pause", PAUSES)
def test_two_hundred_photos_end_to_end(server, tmp_path, pause):
    """What a participant does, timed from their clicks: 200 photos (640x480 JPEG, no labels)
    -> (a pause) -> suggest -> accept all -> train 5 passes -> the server acknowledges; then
    the same round after a reload. The anchor (the InFL-UX way: the whole frozen backbone in
    every step) took 21.4 s for the training alone on this machine (platform facts)."""
    from selenium.webdriver.common.by import By

    n = 200
    task = server.create_task("bench 200 photos", model="mobilenet_v2", classes=["cat", "dog"], min_labelled=4,
                              local_epochs=5, batch_size=16, max_change_ratio=None, max_change_vs_recent=None,
                              direction_guard=False)
    archive = tmp_path / "photos.zip"
    archive.write_bytes(_photos_zip(n, folders=False))
    profile = tempfile.mkdtemp()
    driver = _driver(profile)
    driver.set_script_timeout(300)

    def words(id_: str) -> str:
        return driver.find_element(By.ID, id_).text

    def click(id_: str) -> None:
        driver.execute_script(f"document.getElementById('{id_}').click()")

    def train() -> float:
        seconds = driver.execute_async_script(ROUND_TIMED)
        assert "learned from your" in words("train-result"), words("train-result")
        return seconds

    try:
        driver.get(f"{server.url}/?join={task['join_code']}")
        assert wait_ready(driver) == "ready"
        driver.execute_script(LONG_TASKS)
        phases = {}

        def phase(name: str) -> None:
            phases[name] = driver.execute_script("return performance.now()")

        phase("import")
        driver.find_element(By.ID, "file-input").send_keys(str(archive))
        t_import = _until(lambda: f"{n} images added" in words("import-message"), "import")
        phase("pause")
        time.sleep(pause)
        phase("suggest")
        click("suggest")
        t_suggest = _until(lambda: "suggest" in words("suggest-message").lower() and
                          words("suggest") == "Suggest labels", "suggest")
        driver.execute_script("const t = document.getElementById('threshold'); t.value = '0';"
                              "t.dispatchEvent(new Event('input')); t.dispatchEvent(new Event('change'));")
        phase("accept all")
        click("accept-all")
        t_accept = _until(lambda: f"Accepted {n} suggestions" in words("suggest-message"), "accept")
        phase("train")
        t_train = train()
        phase("end")
        tasks = driver.execute_script("return window.webflLongTaskStarts")
        longest = max([d for _, d in tasks], default=0)
        names = list(phases)
        per_phase = {a: max([d for t, d in tasks if phases[a] <= t < phases[b]], default=0)
                     for a, b in zip(names, names[1:])}
        driver.refresh()
        assert wait_ready(driver) == "ready"
        t_again = train()
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    first = t_import + t_suggest + t_accept + t_train
    print(f"\n| 200 photos, MobileNetV2 head, 5 passes, {pause} s pause before suggesting | first round all in "
          f"{first:.2f} s without the pause (target <= 8): import {t_import:.2f} + suggest {t_suggest:.2f} + accept all {t_accept:.2f} + train and send {t_train:.2f} | "
          f"a later round after a reload {t_again:.2f} s (target <= 1) | anchor: the InFL-UX way, training alone "
          f"21.4 s | longest main-thread task {longest:.0f} ms (by step: "
          f"{', '.join(f'{k} {v:.0f}' for k, v in per_phase.items())}) |")
    assert first > 0 and t_again > 0


# A stop button clicked in the page, timed there until a line of the page says it stopped.
STOP_TIMED = """const [button, line, words, done] = arguments;
const text = document.getElementById(line), start = performance.now();
new MutationObserver((_, seen) => {
  if (text.textContent.includes(words)) { seen.disconnect(); done((performance.now() - start) / 1000); }
}).observe(text, {childList: true, characterData: true, subtree: true});
document.getElementById(button).click();"""
CANCEL_ROUND = ("cancel", "train-text", "cancelled")
# the round is cancelled once this many photos have their features (of those it prepares)
CANCEL_AFTER_PREPARED = 32


def test_stop_is_prompt(server, tmp_path):
    """Stop during long work (target: the page says so within 0.5 s): a round's cancel clicked
    while the round prepares 200 photos (MobileNetV2: features computed) and while it trains
    (digits CNN), "Stop adding" a second into an import of camera photos, and "Stop
    suggesting" a second into suggestions for 200 photos. The anchor:
    before, a round prepared all its photos before it looked at the cancel, so a second page
    (another profile) runs the same round uncancelled and times what was left of its
    preparation from the same point; an import could not be stopped."""
    from selenium.webdriver.common.by import By

    photos = tmp_path / "photos.zip"
    photos.write_bytes(_photos_zip(200))
    digits = tmp_path / "digits.zip"
    digits.write_bytes(_digits_zip(600))

    def settled(task: dict):
        profile = tempfile.mkdtemp()
        driver = _driver(profile)
        driver.set_script_timeout(300)
        driver.get(f"{server.url}/?join={task['join_code']}")
        assert wait_ready(driver) == "ready"
        wait_snapshot_kept(driver)  # nothing else shares the cores
        return driver, profile

    def page(task: dict, archive, n: int):  # settled, with the archive's n images added
        driver, profile = settled(task)
        driver.find_element(By.ID, "file-input").send_keys(str(archive))
        _until(lambda: f"{n} images added" in driver.find_element(By.ID, "import-message").text, "import")
        return driver, profile

    def words(driver) -> str:
        return driver.find_element(By.ID, "train-text").text

    def prepared(driver) -> bool:  # "Preparing your photos: 48 of 190"
        said = words(driver)
        return said.startswith("Preparing your photos:") and int(said.split(":")[1].split()[0]) >= CANCEL_AFTER_PREPARED

    results = {}
    for way in ("cancel", "uncancelled"):
        task = server.create_task(f"bench cancel {way}", model="mobilenet_v2", classes=["cat", "dog"], min_labelled=4,
                                  local_epochs=5, batch_size=16)
        driver, profile = page(task, photos, 200)
        try:
            driver.execute_script("document.getElementById('train-button').click()")
            _until(lambda: prepared(driver), "preparing")
            at = words(driver)
            if way == "cancel":
                results[way] = (driver.execute_async_script(STOP_TIMED, *CANCEL_ROUND), at)
            else:
                start = time.perf_counter()
                _until(lambda: not words(driver).startswith("Preparing"), "prepared")
                results[way] = (time.perf_counter() - start, at)
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
    task = server.create_task("bench cancel training", classes=[str(i) for i in range(10)], min_labelled=10,
                              local_epochs=500, batch_size=32)
    driver, profile = page(task, digits, 600)
    try:
        driver.execute_script("document.getElementById('train-button').click()")
        _until(lambda: words(driver).startswith("Pass ") and int(words(driver).split()[1].split("/")[0]) >= 2, "training")
        training = driver.execute_async_script(STOP_TIMED, *CANCEL_ROUND)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    # suggestions for 200 unlabelled photos, stopped a second in
    task = server.create_task("bench stop suggest", model="mobilenet_v2", classes=["cat", "dog"], min_labelled=4)
    unlabelled = tmp_path / "unlabelled.zip"
    unlabelled.write_bytes(_photos_zip(200, folders=False))
    driver, profile = page(task, unlabelled, 200)
    try:
        driver.execute_script("document.getElementById('suggest').click()")
        time.sleep(1)
        suggesting = driver.execute_async_script(STOP_TIMED, "suggest", "suggest-message", "Suggestions stopped")
        suggested = len(driver.find_elements(By.CSS_SELECTOR, ".tile.suggested"))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    # an import stopped a second in: camera photos, whose decodes take longest
    task = server.create_task("bench stop import", model="mobilenet_v2", classes=["cat", "dog"])
    camera = tmp_path / "camera.zip"
    camera.write_bytes(_camera_photos_zip(40))
    driver, profile = settled(task)
    try:
        driver.find_element(By.ID, "file-input").send_keys(str(camera))
        time.sleep(1)
        importing = driver.execute_async_script(STOP_TIMED, "import-stop", "import-message", "Stopped")
        added = driver.find_element(By.ID, "import-message").text.split()[1]
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    (preparing, at), (left, at_before) = results["cancel"], results["uncancelled"]
    print(f"\n| stop during long work (target <= 0.5 s) | a round while 200 photos are prepared {preparing:.2f} s (clicked "
          f"at '{at}') | before: the round looked at the cancel once its photos were prepared, {left:.2f} s later "
          f"(another page, from '{at_before}') | a round while training the digits CNN {training:.3f} s | adding 40 camera "
          f"photos, a second in {importing:.2f} s ({added} added; before: no way to stop it) | suggesting labels for 200 "
          f"photos, a second in {suggesting:.2f} s ({suggested} suggested; before: no way to stop it) |")
    assert preparing > 0 and training > 0 and importing > 0 and suggesting > 0


def _until(condition, what: str, limit: float = 300) -> float:
    """Poll ``condition`` until it holds; the seconds it took."""
    start = time.perf_counter()
    while not condition():
        assert time.perf_counter() - start < limit, what
        time.sleep(0.02)
    return time.perf_counter() - start


# The page's part of the feature bench, in three calls, so that native blocks can run between
# the page's (the machine's speed drifts; blocks taken in turn see the same machine).
FEATURES_SETUP = """
const done = arguments[0];
window.webfl.pyodide.runPythonAsync(`
import asyncio, js, json, math
from array import array
import browser_py.app as app
from browser_py.features import WebFeatures
from browser_py.jsvalues import js_object, uint8array
p = app.participant
bench_ways = {"now": p.features}
model = await p.client.bundle().read(p.manifest["features"]["file"])
# before: onnxruntime-web 1.19.2 (the training build's) on the page's main thread
bench_ways["before"] = WebFeatures(p.manifest, await js.ort.InferenceSession.create(
    uint8array(model), js_object({"executionProviders": ["wasm"]})), js.ort, "wasm 1.19.2 in the page")
bench_size = math.prod(p.features.input_shape)

async def bench_block(way, n, repeats=3, warm_seconds=0):
    x = array("f", bytes(4 * bench_size * n))
    until = js.performance.now() + warm_seconds * 1000
    while js.performance.now() < until:
        await bench_ways[way]._run(x, n)
    t = js.performance.now()
    for _ in range(repeats):
        await bench_ways[way]._run(x, n)
    return (js.performance.now() - t) / repeats / n
p.features.backend
`).then(done, (e) => done("ERROR: " + e));"""

FEATURES_BLOCK = """
const [way, n, warmSeconds, done] = arguments;
window.webfl.pyodide.runPythonAsync(`await bench_block("${way}", ${n}, warm_seconds=${warmSeconds})`)
  .then(done, (e) => done("ERROR: " + e));"""

# the main thread while the page's extractor runs alone (long tasks are reported after them)
FEATURES_HELD = """
const [n, done] = arguments;
window.webfl.pyodide.runPythonAsync(`
await asyncio.sleep(0.5)
js.window.webflLongTasks = js.Array.new()
await bench_block("now", ${n})
await asyncio.sleep(0.5)
max([0, *js.window.webflLongTasks.to_py()])
`).then(done, (e) => done("ERROR: " + e));"""


def test_feature_extraction_speed(server):
    """MobileNetV2's frozen backbone (features.onnx) per image in the page (onnxruntime-web
    1.30 in its own worker, 2 threads; WebGPU where a hardware adapter exists) beside the
    way before (1.19.2 on the page's main thread) and native onnxruntime at 2 threads, their
    blocks taken in turn (medians); and the longest main-thread task while the page's
    extractor runs."""
    import json

    from browser_py.features import NativeFeatures

    task = server.create_task("bench features", model="mobilenet_v2", classes=["cat", "dog"])
    bundle = server.data_dir / "bundles" / task["id"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    native = NativeFeatures(manifest, (bundle / manifest["features"]["file"]).read_bytes(), threads=2)
    size = int(np.prod(native.input_shape))

    def native_block(n: int, repeats: int = 3, warm_seconds: float = 0) -> float:
        x = array("f", bytes(4 * size * n))
        until = time.perf_counter() + warm_seconds
        while time.perf_counter() < until:
            asyncio.run(native._run(x, n))
        t = time.perf_counter()
        for _ in range(repeats):
            asyncio.run(native._run(x, n))
        return (time.perf_counter() - t) / repeats / n * 1e3

    profile = tempfile.mkdtemp()
    driver = _driver(profile)
    driver.set_script_timeout(900)
    batches, warm_seconds, blocks = [1, 8, 16], 4, 5
    times: dict[tuple[str, int], list[float]] = {}
    held = {}
    try:
        driver.get(f"{server.url}/?join={task['join_code']}&threads=2")
        assert wait_ready(driver) == "ready"
        wait_snapshot_kept(driver)  # the start-up snapshot's worker would share the cores
        driver.execute_script(LONG_TASKS)
        backend = driver.execute_async_script(FEATURES_SETUP)
        assert not str(backend).startswith("ERROR"), backend

        def page_block(way: str, n: int, warm: float = 0) -> float:
            ms = driver.execute_async_script(FEATURES_BLOCK, way, n, warm)
            assert not str(ms).startswith("ERROR"), ms
            return float(ms)

        for n in batches:
            page_block("now", n, warm_seconds)
            page_block("before", n, warm_seconds)
            native_block(n, warm_seconds=1.0)
            for rep in range(blocks):  # in turn, starting with another way each time
                for way in _in_turn(("now", "before", "native"), rep):
                    ms = native_block(n) if way == "native" else page_block(way, n)
                    times.setdefault((way, n), []).append(ms)
            held[n] = driver.execute_async_script(FEATURES_HELD, n)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

    def median(way: str, n: int) -> float:
        return statistics.median(times[(way, n)])

    for n in batches:
        now, before, native_ms = median("now", n), median("before", n), median("native", n)
        print(f"\n| MobileNetV2 features, batch {n}, 2 threads | browser on {backend} {now:.1f} ms per image | "
              f"before (1.19.2 on the page's main thread) {before:.1f} ms | native {native_ms:.1f} ms | "
              f"browser/native {native_ms / now:.2f} (target >= 0.25; before {native_ms / before:.2f}) | "
              f"blocks taken in turn, medians of {blocks} | longest main-thread task meanwhile {held[n]:.0f} ms |")
    assert all(median("now", n) > 0 for n in batches)
