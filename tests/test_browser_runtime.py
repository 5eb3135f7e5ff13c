"""The vendored browser runtime works: Pyodide + onnxruntime-web train a bundle from Python."""
from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from live import wait_ready, wait_snapshot_kept

pytestmark = pytest.mark.browser

RUN_PY = """
const [taskId, token, pixels, labels, done] = arguments;
const py = window.webfl.pyodide;
py.globals.set("task_id", taskId);
py.globals.set("token", token);
py.globals.set("pixels_js", pixels);
py.globals.set("labels_js", labels);
py.runPythonAsync(`
from array import array
from browser_py.ort_web import OrtWebTrainer
from browser_py.protocol import FLClient, Membership
from browser_py.stores import MemoryStore
import js
client = FLClient(str(js.location.origin), MemoryStore())
client.membership = Membership(task_id, "", token, "")
trainer = await OrtWebTrainer.create(client.bundle())
x = array('f', pixels_js.to_py())
y = list(labels_js.to_py())
losses = [await trainer.train_step(x, y) for _ in range(2)]
params = await trainer.get_parameters()
[losses, len(params), float(sum(params[:100]))]
`).then((r) => done(r.toJs())).catch((e) => done("ERROR: " + e.message));
"""


def _native_losses(bundle_dir, x, y, steps=2):
    from browser_py.bundle_source import DirectoryBundle
    from browser_py.native.trainer import NativeTrainer

    async def go():
        trainer = await NativeTrainer.create(DirectoryBundle(bundle_dir))
        losses = [await trainer.train_step(x, y) for _ in range(steps)]
        params = await trainer.get_parameters()
        return losses, len(params), float(np.sum(np.frombuffer(params, np.float32)[:100]))

    return asyncio.run(go())


def test_page_reaches_ready(browser, live_server):
    browser.get(live_server.url + "/?join=" + live_server.demo_task()["join_code"])
    assert wait_ready(browser) == "ready", browser.execute_script(
        "return document.documentElement.dataset.webflError")
    assert "Handwritten digits" in browser.find_element("id", "task").text
    assert browser.execute_script("return self.crossOriginIsolated") is True
    # the standard library came as bytecode compiled at setup (server/pyodide_bytecode.mjs)
    assert browser.execute_script(
        "return window.webfl.pyodide.runPython('import asyncio, json; (asyncio.__file__, json.decoder.__file__)')"
        ".toJs()") == ["/lib/python314.zip/asyncio/__init__.pyc", "/lib/python314.zip/json/decoder.pyc"]
    # the global model was on its way while the training engine started, not after
    assert browser.execute_script("""const model = performance.getEntriesByType("resource")
        .find((e) => /\\/api\\/tasks\\/[^/]+\\/model$/.test(e.name));
        return model.startTime < performance.getEntriesByName("webfl:trainer")[0].startTime""") is True
    # and the wheels' modules came with theirs (a module the page's Python compiles itself leaves
    # no .pyc behind)
    assert browser.execute_script("""return window.webfl.pyodide.runPython(`
import browser_py.participant, tenacity
flags = []
for m in (browser_py.participant, tenacity):
    with open(m.__cached__, "rb") as f:
        flags.append(int.from_bytes(f.read(8)[4:], "little"))
flags
`).toJs()""") == [1, 1]


def test_pyodide_training_step_matches_cpython(browser, live_server):
    from array import array

    joined = live_server.join_demo()
    rng = np.random.default_rng(7)
    pixels = (rng.random(8 * 28 * 28) * 255).astype(np.float32)
    labels = [int(v) for v in rng.integers(0, 10, size=8)]

    browser.get(live_server.url + "/")
    assert wait_ready(browser) == "ready"
    result = browser.execute_async_script(RUN_PY, joined["task_id"], joined["token"], pixels.tolist(), labels)
    assert not isinstance(result, str), result
    web_losses, web_n, web_sum = result

    bundle_dir = live_server.data_dir / "bundles" / joined["task_id"]
    native_losses, native_n, native_sum = _native_losses(bundle_dir, array("f", pixels.tobytes()), labels)
    assert web_n == native_n == 56714
    assert web_losses[0] == pytest.approx(native_losses[0], abs=1e-4)
    # The second loss follows an optimizer step with the baked learning rate.
    assert web_losses[1] == pytest.approx(native_losses[1], abs=1e-4)
    assert web_losses[1] < web_losses[0]
    assert web_sum == pytest.approx(native_sum, abs=1e-3)


SLICED_PY = """
const [taskId, token, done] = arguments;
const py = window.webfl.pyodide;
py.globals.set("task_id", taskId);
py.globals.set("token", token);
py.runPythonAsync(`
import random
from array import array
from browser_py.ort_web import OrtWebTrainer
from browser_py.protocol import FLClient, Membership
from browser_py.stores import MemoryStore
import js
client = FLClient(str(js.location.origin), MemoryStore())
client.membership = Membership(task_id, "", token, "")
rng = random.Random(3)
samples = [array('f', [rng.random() * 255 for _ in range(784)]) for _ in range(46)]
labels = [rng.randrange(10) for _ in samples]
# distinct batches of two sizes in shuffled order: a batch gathered from the wrong rows or
# read too late would repeat or mix samples
order = list(range(len(samples)))
rng.shuffle(order)
sizes, parts = (8, 8, 5, 8, 5, 5, 7), []
for n in sizes:
    parts.append(order[:n])
    order = order[n:]
one_by_one = await OrtWebTrainer.create(client.bundle())
async def waited_step(part):  # the reference: each call awaited from Python, as before
    s = one_by_one._session
    x = array('f')
    for i in part:
        x.extend(samples[i])
    out = await s.runTrainStep(one_by_one._feeds(x, [labels[i] for i in part]))
    await s.runOptimizerStep()
    await s.lazyResetGrad()
    return float(js.Reflect.get(out, one_by_one._loss_name).data[0])
waited = [await waited_step(part) for part in parts]
sliced = await OrtWebTrainer.create(client.bundle())
held = sliced.samples(samples, labels)
together = await sliced.train_steps(held, parts[:4]) + await sliced.train_steps(held, parts[4:])
a, b = await one_by_one.get_parameters(), await sliced.get_parameters()
# the same set again reuses its JS copy; another label or other arrays (equal values) make a new one
relabelled = [(labels[0] + 1) % 10, *labels[1:]]
again = sliced.samples(samples, labels) is held
new_labels = sliced.samples(samples, relabelled)
new_arrays = sliced.samples([array('f', x) for x in samples], relabelled)
reuse = [again, new_labels is not held and int(new_labels[1][0]) == relabelled[0], new_arrays is not new_labels]
[waited, together, a.tobytes() == b.tobytes(), reuse]
`).then((r) => done(r.toJs())).catch((e) => done("ERROR: " + e.message));
"""


def test_steps_run_in_slices_equal_steps_waited_for_one_by_one(browser, live_server):
    """train_steps hands a slice's sample indices to JS at once (www/js/train_steps.mjs),
    which gathers each batch from the training set copied there once: losses and parameters
    equal calls awaited one by one from Python, bit for bit. A later fit on the same arrays
    and labels reuses the copy; any other set is copied afresh."""
    joined = live_server.join_demo()
    browser.get(live_server.url + "/")
    assert wait_ready(browser) == "ready"
    result = browser.execute_async_script(SLICED_PY, joined["task_id"], joined["token"])
    assert not isinstance(result, str), result
    waited, together, same_parameters, reuse = result
    assert len(set(waited)) == len(waited) == 7       # every batch gave its own loss
    assert together == waited and same_parameters
    assert reuse == [True, True, True]  # a later fit on the same cached arrays skips the copy


@pytest.mark.parametrize("query, expected", [("", None), ("&threads=1", 1), ("&threads=3", 3),
                                             ("&threads=999", None), ("&threads=%D9%A3", None), ("&threads=-2", None)])
def test_wasm_threads_follow_the_device_and_a_bounded_override(browser, live_server, query, expected):
    """The device's cores up to 4 unless ?threads=N (1-16, ASCII digits) asks otherwise."""
    browser.get(f"{live_server.url}/?join={live_server.demo_task()['join_code']}{query}")
    assert wait_ready(browser) == "ready"
    cores = browser.execute_script("return navigator.hardwareConcurrency")
    want = expected if expected is not None else max(1, min(4, cores))
    assert browser.execute_script("return ort.env.wasm.numThreads") == want
    training = browser.execute_script("""return window.webfl.pyodide.runPython(
        "import browser_py.app as app; app.participant.trainer.backend.name")""")
    assert f"{want} thread" in training


def _open(browser, url: str) -> str:
    """Open the page; how its Python started: ``snapshot`` or ``fresh``."""
    browser.get(url)
    assert wait_ready(browser) == "ready"
    return browser.execute_script("return document.documentElement.dataset.webflPython ?? null")


TRAINS = """return window.webfl.pyodide.runPythonAsync(`
import math
import random
from array import array
import browser_py.app as app
backend = app.participant.trainer.backend
loss = await backend.train_step(array('f', [0.5] * (4 * math.prod(backend.input_shape))), [0, 1, 2, 3])
[random.random(), loss > 0]
`).then((r) => r.toJs())"""

REWRITE_SNAPSHOT = """
const [key, bytes, done] = arguments;
(async () => {
  const { SNAPSHOT_CACHE, SNAPSHOT_REQUEST, KEY_HEADER } = await import("/static/js/python_snapshot.mjs");
  const cache = await caches.open(SNAPSHOT_CACHE);
  const kept = await cache.match(SNAPSHOT_REQUEST);
  const body = bytes === null ? await kept.arrayBuffer() : new Uint8Array(bytes);
  await cache.put(SNAPSHOT_REQUEST, new Response(body, {headers: {[KEY_HEADER]: key ?? kept.headers.get(KEY_HEADER)}}));
  done("ok");
})().catch((e) => done("ERROR: " + e.message));
"""


# What a kept snapshot holds: restored in a Python of its own, before any wheel is unpacked
SNAPSHOT_MODULES = """
const done = arguments[0];
(async () => {
  const { PYODIDE_URL, keptSnapshot } = await import("/static/js/python_snapshot.mjs");
  const { loadPyodide } = await import(`${PYODIDE_URL}pyodide.mjs`);
  const kept = await keptSnapshot();
  const py = await loadPyodide({ indexURL: PYODIDE_URL, _loadSnapshot: kept.bytes });
  done(py.runPython(`import json, sys
json.dumps({n: getattr(m, "__file__", None) for n, m in sys.modules.items() if n.startswith("browser_py")})`));
})().catch((e) => done("ERROR: " + e.message));
"""


def test_python_start_up_is_kept_and_restored_on_the_next_visit(browser, live_server):
    """The first visit starts Python afresh and keeps a snapshot (made in a worker) that holds
    the client's modules (imported from site-packages); later visits restore it, and the
    restored client still trains, with fresh randomness each time."""
    url = f"{live_server.url}/?join={live_server.demo_task()['join_code']}"
    assert _open(browser, url) == "fresh"
    wait_snapshot_kept(browser)
    held = browser.execute_async_script(SNAPSHOT_MODULES)
    assert not held.startswith("ERROR"), held
    held = json.loads(held)
    for name in ("browser_py.participant", "browser_py.protocol", "browser_py.ui.participant_page"):
        assert name in held and "/site-packages/browser_py/" in held[name], (name, held.get(name))
    draws = []
    for _ in range(2):
        assert _open(browser, url) == "snapshot"
        draw, trained = browser.execute_script(TRAINS)
        assert trained
        draws.append(draw)
    assert draws[0] != draws[1]     # random.seed() at start: a snapshot does not replay one sequence


def test_a_damaged_or_stale_snapshot_is_dropped_and_python_starts_afresh(browser, live_server):
    url = f"{live_server.url}/?join={live_server.demo_task()['join_code']}"
    assert _open(browser, url) == "fresh"
    wait_snapshot_kept(browser)
    # damaged bytes under the right key: the restore fails, the page starts afresh, a new one is kept
    assert browser.execute_async_script(REWRITE_SNAPSHOT, None, [7] * 4096) == "ok"
    assert _open(browser, url) == "fresh"
    wait_snapshot_kept(browser)
    assert _open(browser, url) == "snapshot"
    # a snapshot made from other wheels (an older client) is not used
    assert browser.execute_async_script(REWRITE_SNAPSHOT, "0" * 64, None) == "ok"
    assert _open(browser, url) == "fresh"
