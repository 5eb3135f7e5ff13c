"""Helpers for tests against a real server and headless Chromium (imported by tests)."""
from __future__ import annotations

from experiments.browser import wait_state
from experiments.server import ROOT, ServerProcess

ARTIFACTS = ROOT / "test-artifacts"


class LiveServer(ServerProcess):
    """The server as tests use it: with the demo task's helpers."""

    def demo_task(self) -> dict:
        return self.api("GET", "/api/admin/tasks")["tasks"][0]

    def join_demo(self) -> dict:
        return self.api("POST", "/api/join", {"code": self.demo_task()["join_code"]})


def wait_ready(driver, timeout: float = 90) -> str:
    return wait_state(driver, timeout)


def wait_snapshot_kept(driver, timeout: float = 120) -> None:
    """Wait until the page's worker has kept its Python snapshot (www/js/python_snapshot.mjs)."""
    import time

    deadline = time.monotonic() + timeout
    while driver.execute_script("return document.documentElement.dataset.webflSnapshot ?? null") != "kept":
        assert time.monotonic() < deadline, "no Python snapshot was kept"
        time.sleep(0.2)


def run_experiment_cli(config: str, out, timeout: float = 600) -> dict:
    """``webfl experiment CONFIG --out OUT`` as a researcher runs it; its results.json."""
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "server.cli", "experiment", str(config), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads((out / "results.json").read_text())


AXE_SOURCE = ROOT / ".cache" / "axe" / "axe.min.js"  # vendored by `make` (server.vendor), never served


def accessibility_problems(driver, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict]:
    """axe-core's violations of the page as it is now, limited to ``impacts``: each
    ``{id, impact, help, nodes: [css selector, ...]}``."""
    found = driver.execute_async_script(AXE_SOURCE.read_text() + """
;const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]}).then(
  (r) => done(r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
                                         nodes: v.nodes.map((n) => n.target.join(" "))}))),
  (e) => done([{id: "axe-error", impact: "critical", help: String(e), nodes: []}]));""")
    return [v for v in found if v["impact"] in impacts]
