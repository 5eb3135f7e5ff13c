"""A participant labels for a long time: event-listener proxies and the wasm heap stay flat
(the grid delegates its tiles' events instead of binding handlers on every re-render)."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from client_helpers import digit_files, image_folder_zip
from live import wait_ready

pytestmark = pytest.mark.browser

LABEL_ACTIONS = r"""
const [count, done] = [arguments[0], arguments[arguments.length - 1]];
const py = window.webfl.pyodide;
const probe = () => ({proxies: py.runPython("from browser_py.ui import dom; dom.live_proxies()"),
                      heap: py._module.HEAP8.length});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  const samples = [];
  for (let i = 0; i < count; i++) {
    const tiles = document.querySelectorAll("#grid .tile");
    const tile = tiles[i % tiles.length];
    const id = tile.dataset.id;
    const label = String((i % 9) + 1);
    const pick = tile.querySelector("select.pick");
    pick.value = label;
    pick.dispatchEvent(new Event("change", {bubbles: true}));
    const deadline = performance.now() + 10000;
    for (;;) {  // the grid re-renders with the new label
      const now = document.querySelector(`#grid .tile[data-id="${id}"] .label`);
      if (now && now.textContent.startsWith(label + " ")) break;
      if (performance.now() > deadline) throw new Error(`action ${i}: no re-render`);
      await sleep(1);
    }
    if (i === 99 || i === count - 1) samples.push(probe());
  }
  return samples;
})().then(done, (e) => done({error: String(e)}));
"""


def test_a_thousand_label_actions_keep_proxies_and_heap_flat(browser, live_server, tmp_path):
    task = live_server.create_task("listeners", classes=[str(d) for d in range(10)])
    browser.get(f"{live_server.url}/?join={task['join_code']}&slot=listeners")
    assert wait_ready(browser) == "ready"
    path = tmp_path / "digits.zip"
    path.write_bytes(image_folder_zip(digit_files(20)))
    browser.find_element(By.ID, "file-input").send_keys(str(path))
    browser.set_script_timeout(600)
    deadline_ok = browser.execute_async_script("""
const done = arguments[arguments.length - 1];
const t0 = performance.now();
(function wait() {
  if (document.querySelectorAll('#grid .tile select.pick').length >= 20) return done(true);
  if (performance.now() - t0 > 60000) return done(false);
  setTimeout(wait, 100);
})();""")
    assert deadline_ok
    samples = browser.execute_async_script(LABEL_ACTIONS, 1000)
    assert not isinstance(samples, dict), samples
    after_100, after_1000 = samples
    print(f"\nlive proxies after 100 / 1000 label actions: {after_100['proxies']} / {after_1000['proxies']}; "
          f"wasm heap: {after_100['heap'] / 2**20:.1f} / {after_1000['heap'] / 2**20:.1f} MiB")
    assert after_1000["proxies"] == after_100["proxies"]
    assert after_1000["heap"] <= after_100["heap"] * 1.05
