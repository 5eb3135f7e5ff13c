"""Client extensions: the API, the two shipped ones, failures, the guide's example."""
from __future__ import annotations

import asyncio
import math
import re
import shutil
import sys

import numpy as np
import pytest

from browser_py.extension_testing import fake_context, make_update
from browser_py.extensions import Update
from browser_py.participant import Participant
from browser_py.protocol import FLClient
from browser_py.stores import MemoryStore
from client_helpers import digit_files, image_folder_zip
from live import ROOT, LiveServer

sys.path.insert(0, str(ROOT / "extensions"))
import local_dp  # noqa: E402
import uncertainty_first  # noqa: E402

run = asyncio.run
CTX = fake_context(classes=["a", "b"], labelled={"a": 3, "b": 2})


# --- local differential privacy ----------------------------------------------------------

def _update(delta: np.ndarray) -> Update:
    base = np.linspace(-1, 1, delta.size).astype(np.float32)
    return make_update(delta.astype(np.float32).tolist(), base.tolist())


def test_dp_clips_to_the_bound_without_noise():
    ext = local_dp.LocalDP(clip=2.5, noise_multiplier=0.0, seed=1)
    delta = np.random.default_rng(0).normal(0, 1, 5000).astype(np.float32)   # norm ~70
    out = ext.before_send(CTX, _update(delta))
    sent = np.frombuffer(out.params, np.float32) - np.frombuffer(out.base, np.float32)
    assert np.linalg.norm(sent) == pytest.approx(2.5, rel=1e-4)
    np.testing.assert_allclose(sent / np.linalg.norm(sent), delta / np.linalg.norm(delta), atol=1e-4)
    small = np.full(100, 0.01, np.float32)                                     # norm 0.1: untouched
    out = local_dp.LocalDP(clip=2.5, noise_multiplier=0.0).before_send(CTX, _update(small))
    np.testing.assert_allclose(np.frombuffer(out.params, np.float32) - np.frombuffer(out.base, np.float32),
                               small, atol=1e-6)


def test_dp_noise_has_the_configured_scale():
    """sent - base - clipped delta should be N(0, (z C)^2) per coordinate."""
    clip, z, n = 1.5, 0.8, 60_000
    ext = local_dp.LocalDP(clip=clip, noise_multiplier=z, seed=7)
    delta = np.zeros(n, np.float32)
    delta[0] = 10.0                                                            # clipped to (1.5, 0, ...)
    out = ext.before_send(CTX, _update(delta))
    noise = np.frombuffer(out.params, np.float32) - np.frombuffer(out.base, np.float32)
    noise[0] -= clip
    sigma = z * clip
    assert abs(noise.mean()) < 4 * sigma / math.sqrt(n)                        # ~4 standard errors
    assert noise.std() == pytest.approx(sigma, rel=0.02)
    kurtosis = ((noise - noise.mean()) ** 4).mean() / noise.var() ** 2
    assert kurtosis == pytest.approx(3.0, abs=0.1)                             # Gaussian tails
    again = local_dp.LocalDP(clip=clip, noise_multiplier=z, seed=7).before_send(CTX, _update(delta))
    assert again.params == out.params                                          # the seed fixes it


@pytest.mark.parametrize("z, rounds", [(1.1, 1), (1.1, 10), (0.7, 50), (2.0, 200)])
def test_dp_epsilon_matches_dp_accounting(z, rounds):
    import dp_accounting
    from dp_accounting import rdp

    accountant = rdp.RdpAccountant()
    accountant.compose(dp_accounting.GaussianDpEvent(noise_multiplier=z), rounds)
    reference = accountant.get_epsilon(1e-5)
    ours = local_dp.gaussian_epsilon(z, rounds, 1e-5)
    assert ours == pytest.approx(reference, rel=0.01)


def test_dp_reports_its_budget_per_round():
    ext = local_dp.LocalDP(clip=1.0, noise_multiplier=1.1, seed=0)
    u = _update(np.ones(10, np.float32))
    eps = []
    for _ in range(3):
        ext.before_send(CTX, u)
        eps.append(ext.metrics(CTX, u)["dp_epsilon"])
    assert eps[0] < eps[1] < eps[2] and ext.metrics(CTX, u)["dp_rounds"] == 3.0
    with pytest.raises(ValueError):
        local_dp.LocalDP(clip=0)


# --- uncertainty first -------------------------------------------------------------------

def test_uncertainty_first_orders_and_toggles():
    ext = uncertainty_first.UncertaintyFirst(by="margin")
    ids, probs = ["sure", "torn", "mid"], [[0.95, 0.05], [0.52, 0.48], [0.7, 0.3]]
    assert ext.review_order(CTX, ids, probs) == ["torn", "mid", "sure"]
    ent = uncertainty_first.UncertaintyFirst(by="entropy")
    assert ent.review_order(CTX, ids, probs)[0] == "torn"
    ext.enabled = False
    assert ext.review_order(CTX, ids, probs) is None
    with pytest.raises(ValueError):
        uncertainty_first.UncertaintyFirst(by="random")


# --- delivery, failures and the guide, against a real server -------------------------------

BROKEN_IMPORT = "raise RuntimeError('this extension is broken on purpose')\n"
BROKEN_HOOK = '''
from browser_py.extensions import Extension, register


@register
class Exploding(Extension):
    name = "exploding_hook"

    def metrics(self, ctx, update):
        raise ValueError("boom")
'''


NEEDS_DEPENDENCY = '''"""Counts the labelled training images with more-itertools, a package from PyPI."""
from more_itertools import ilen

from browser_py.extensions import Extension, register

REQUIRES = ["more-itertools"]


@register
class NeedsDependency(Extension):
    name = "needs_dependency"
    title = "Counting with a dependency"

    def metrics(self, ctx, update):
        return {"labelled_counted": float(ilen(ctx.dataset.labelled("train")))}
'''


def _guide_example() -> str:
    text = (ROOT / "docs" / "extensions.md").read_text()
    return re.search(r"```python\n(# extensions/label_balance.py\n.*?)```", text, re.S).group(1)


@pytest.fixture(scope="module")
def ext_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("extensions")
    for name in ("local_dp.py", "uncertainty_first.py"):
        shutil.copy(ROOT / "extensions" / name, folder / name)
    (folder / "broken_import.py").write_text(BROKEN_IMPORT)
    (folder / "exploding_hook.py").write_text(BROKEN_HOOK)
    (folder / "needs_dependency.py").write_text(NEEDS_DEPENDENCY)
    (folder / "needs_unknown.py").write_text(NEEDS_DEPENDENCY.replace('"more-itertools"', '"left-pad"')
                                              .replace("needs_dependency", "needs_unknown"))
    (folder / "label_balance.py").write_text(_guide_example())
    server = LiveServer(tmp_path_factory.mktemp("ext-server"), env={"WEBFL_EXTENSIONS_DIR": str(folder)})
    yield server
    server.stop()


def _participant(server, task) -> Participant:
    store = MemoryStore()
    p = Participant(FLClient(server.url, store), store)
    run(p.start(task["join_code"]))
    run(p.import_files([("d.zip", image_folder_zip(digit_files(40)))]))
    return p


def test_unknown_extension_is_refused(ext_server):
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as err:
        ext_server.api("POST", "/api/admin/tasks", {"title": "x", "config": {
            "classes": ["a", "b"], "extensions": [{"name": "no_such_thing"}]}})
    assert err.value.code == 400


def test_shipped_extensions_run_in_cpython_clients(ext_server):
    task = ext_server.create_task("dp", classes=[str(d) for d in range(10)], min_labelled=10, extensions=[
        {"name": "local_dp", "params": {"clip": 0.5, "noise_multiplier": 0.0, "seed": 3}},
        {"name": "uncertainty_first", "params": {"by": "margin"}}])
    p = _participant(ext_server, task)
    assert [e.name for e in p.extensions] == ["local_dp", "uncertainty_first"] and not p.extension_errors
    run(p.import_files([(f"u{i}.png", d) for i, (_, d, _) in enumerate(digit_files(12, offset=60))]))
    order = run(p.suggest())
    margins = [uncertainty_first.margin(p.last_probs[i]) for i in order]
    assert margins == sorted(margins)
    version, before = run(p.client.pull())
    result = run(p.train_round(epochs=2))
    assert result.ack["status"] == "applied"
    m = ext_server.api("GET", f"/api/tasks/{task['id']}/metrics?since={version}")
    sent = m["versions"][0]["updates"][0]
    assert sent["metrics"]["dp_rounds"] == 1.0 and sent["metrics"]["dp_clip"] == 0.5
    assert "dp_epsilon" not in sent["metrics"]  # without noise there is no finite guarantee to report
    # the server merged a clipped change: alpha 0.6 * polynomial(0) = 0.6 of a norm-0.5 step
    _, after = run(p.client.pull())
    change = np.frombuffer(after, np.float32) - np.frombuffer(before, np.float32)
    assert np.linalg.norm(change) == pytest.approx(0.6 * 0.5, rel=1e-3)


def test_broken_extensions_do_not_stop_the_client(ext_server):
    task = ext_server.create_task("broken", classes=[str(d) for d in range(10)], min_labelled=10, extensions=[
        {"name": "broken_import"}, {"name": "exploding_hook"}])
    p = _participant(ext_server, task)
    assert len(p.extension_errors) == 1 and "broken on purpose" in p.extension_errors[0]
    assert "extension broken_import could not be loaded: RuntimeError" in p.extension_errors[0]
    result = run(p.train_round())
    assert result.ack["status"] == "applied"
    assert any("exploding_hook failed in metrics and was switched off: ValueError: boom" in e
               for e in p.extension_errors)
    assert p.extensions == []
    assert "Traceback" in p.extension_errors.tracebacks[p.extension_errors[-1]]  # one step away


def test_webfl_client_prints_extension_errors_and_counts_them(ext_server):
    import subprocess

    task = ext_server.create_task("cli errors", classes=[str(d) for d in range(10)], min_labelled=10,
                                  extensions=[{"name": "exploding_hook"}])
    proc = subprocess.run([sys.executable, "-m", "server.cli", "client", "--server", ext_server.url, "--code",
                           task["join_code"], "--clients", "1", "--samples", "40", "--rounds", "1"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "exploding_hook failed in metrics and was switched off: ValueError: boom" in out
    assert "Traceback (most recent call last)" in out and 'raise ValueError("boom")' in out
    assert "1 participants finished, 0 failed, 1 with extension errors" in out


def test_the_guide_example_works(ext_server):
    task = ext_server.create_task("guide", classes=[str(d) for d in range(10)], min_labelled=10,
                                  extensions=[{"name": "label_balance", "params": {"min_samples": 1000}}])
    p = _participant(ext_server, task)
    assert run(p.train_round()).ack == {"status": "vetoed", "by": "label_balance"}
    ext_server.api("PATCH", f"/api/admin/tasks/{task['id']}", {"config": {
        "extensions": [{"name": "label_balance", "params": {"min_samples": 5}}]}})
    p = _participant(ext_server, task)
    version = run(p.client.current_version())
    assert run(p.train_round()).ack["status"] == "applied"
    m = ext_server.api("GET", f"/api/tasks/{task['id']}/metrics?since={version}")
    metrics = m["versions"][0]["updates"][0]["metrics"]
    assert metrics["classes_present"] == 10.0 and 0 < metrics["balance"] <= 1


@pytest.mark.browser
def test_extensions_in_the_browser(browser, ext_server, tmp_path):
    """The same wheels, put on sys.path in Pyodide: panels, hooks, and a broken one reported."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from live import wait_ready

    # Local DP's noise makes an update far larger than the model: the size bound is loosened, as
    # docs/extensions.md tells admins who run it.
    task = ext_server.create_task("browser ext", classes=[str(d) for d in range(10)], min_labelled=10,
                                  max_change_ratio=None, max_change_vs_recent=None, extensions=[
        {"name": "local_dp", "params": {"clip": 1.0, "noise_multiplier": 1.1}},
        {"name": "uncertainty_first", "params": {"by": "margin"}},
        {"name": "needs_dependency"},
        {"name": "broken_import"}])
    browser.get(f"{ext_server.url}/?join={task['join_code']}")
    assert wait_ready(browser) == "ready"
    notice = browser.find_element(By.ID, "extensions-notice").text  # shown before joining
    assert "Local differential privacy: Local differential privacy for updates: clip, then add Gaussian noise." \
        in notice and "Review the least certain images first: Uncertainty-first review" in notice
    from live import accessibility_problems

    assert not accessibility_problems(browser)  # the card before joining, as every page state
    browser.find_element(By.ID, "join-confirm-button").click()
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.ID, "dp-panel"))
    assert wait_ready(browser) == "ready"
    assert not accessibility_problems(browser)  # with the extensions' panels and errors
    assert "extensions chosen by its organiser" in browser.find_element(By.ID, "task").text
    assert "epsilon = 0.00" in browser.find_element(By.ID, "dp-panel").text
    errors = browser.find_element(By.ID, "extension-errors").text
    assert "extension broken_import could not be loaded" in errors and "broken on purpose" in errors
    archive = tmp_path / "d.zip"
    archive.write_bytes(image_folder_zip(digit_files(30)))
    browser.find_element(By.ID, "file-input").send_keys(str(archive))
    WebDriverWait(browser, 60).until(lambda d: "30 images added" in d.find_element(By.ID, "import-message").text)
    loose = []
    for i, (_, data, _) in enumerate(digit_files(6, offset=70)):
        (tmp_path / f"u{i}.png").write_bytes(data)
        loose.append(str(tmp_path / f"u{i}.png"))
    browser.find_element(By.ID, "file-input").send_keys("\n".join(loose))
    WebDriverWait(browser, 60).until(lambda d: "6 images added" in d.find_element(By.ID, "import-message").text)
    browser.find_element(By.ID, "suggest").click()
    WebDriverWait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".tile.suggested")) == 6)

    def shown_confidences():
        return [float(t.text.split("?")[1].strip().rstrip("%")) for t in
                browser.find_elements(By.CSS_SELECTOR, ".tile.suggested .suggestion")]

    first = browser.execute_script(
        "return [...document.querySelectorAll('.tile.suggested')].map((t) => t.dataset.id)")
    browser.find_element(By.ID, "uncertainty-toggle").click()  # off: most confident first
    WebDriverWait(browser, 10).until(lambda d: shown_confidences() == sorted(shown_confidences(), reverse=True))
    browser.find_element(By.ID, "uncertainty-toggle").click()  # on again: least certain first
    WebDriverWait(browser, 10).until(lambda d: browser.execute_script(
        "return [...document.querySelectorAll('.tile.suggested')].map((t) => t.dataset.id)") == first)
    browser.find_element(By.ID, "train-button").click()
    WebDriverWait(browser, 120).until(lambda d: "learned from your" in d.find_element(By.ID, "train-result").text)
    assert "after 1 update" in browser.find_element(By.ID, "dp-panel").text
    m = ext_server.api("GET", f"/api/tasks/{task['id']}/metrics")
    assert m["versions"][-1]["updates"][0]["metrics"]["dp_epsilon"] > 0
    assert m["versions"][-1]["updates"][0]["metrics"]["labelled_counted"] > 0  # its dependency was installed


def test_the_guide_example_is_unit_tested_with_the_kit():
    """The testing kit runs an extension's hooks without a server: the guide's own example."""
    namespace: dict = {}
    exec(compile(_guide_example(), "label_balance.py", "exec"), namespace)
    ext = namespace["LabelBalance"](min_samples=5)
    ctx = fake_context(classes=["cat", "dog", "bird"], labelled={"cat": 12, "dog": 3})
    assert ext.metrics(ctx, make_update([0.1, -0.2], samples=15)) == {"classes_present": 2.0, "balance": 0.25}
    assert ext.before_send(ctx, make_update([0.1], samples=4)) is None


def test_an_extension_with_a_pypi_dependency_runs_in_cpython(ext_server):
    before = ext_server.api("GET", "/api/admin/choices")
    assert any(e["name"] == "needs_dependency" for e in before["extensions"])
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as refused:
        ext_server.create_task("unknown dep", classes=["a", "b"], extensions=[{"name": "needs_unknown"}])
    assert refused.value.code == 400 and "left-pad" in refused.value.read().decode()
    task = ext_server.create_task("dependency", classes=[str(d) for d in range(10)], min_labelled=10,
                                  extensions=[{"name": "needs_dependency"}])
    preview = ext_server.api("GET", f"/api/join/{task['join_code']}")
    assert preview["extensions"][0]["requires"] == ["/vendor/extension-deps/more_itertools-10.8.0-py3-none-any.whl"]
    p = _participant(ext_server, task)
    assert p.extension_errors == [] and [e.name for e in p.extensions] == ["needs_dependency"]
    result = run(p.train_round())
    # the vendored wheel was fetched from the server and put on the path before the extension
    assert any(entry.endswith("more_itertools-10.8.0-py3-none-any.whl") for entry in sys.path)
    m = ext_server.api("GET", f"/api/tasks/{task['id']}/metrics?since={result.ack['applied_version'] - 1}")
    counted = m["versions"][0]["updates"][0]["metrics"]["labelled_counted"]
    assert counted == len(p.dataset.labelled("train"))


@pytest.mark.browser
def test_a_hook_error_reaches_the_participant_even_without_a_panel(browser, ext_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from live import wait_ready

    task = ext_server.create_task("hook error", classes=[str(d) for d in range(10)], min_labelled=10,
                                  extensions=[{"name": "exploding_hook"}])
    browser.get(f"{ext_server.url}/?join={task['join_code']}")
    assert wait_ready(browser) == "ready"
    browser.find_element(By.ID, "join-confirm-button").click()
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.ID, "file-input"))
    archive = tmp_path / "d.zip"
    archive.write_bytes(image_folder_zip(digit_files(20)))
    browser.find_element(By.ID, "file-input").send_keys(str(archive))
    WebDriverWait(browser, 60).until(lambda d: "20 images added" in d.find_element(By.ID, "import-message").text)
    browser.find_element(By.ID, "train-button").click()
    WebDriverWait(browser, 120).until(lambda d: "exploding_hook failed in metrics" in
                                      d.find_element(By.ID, "extension-errors").text)
    errors = browser.find_element(By.ID, "extension-errors")
    assert "turned off" in errors.text and "Technical details" in errors.text
    browser.find_element(By.CSS_SELECTOR, "#extension-errors summary").click()
    assert 'raise ValueError("boom")' in errors.text  # the traceback, one click away
