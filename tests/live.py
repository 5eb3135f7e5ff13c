"""Helpers for tests against a real server and headless Chromium (imported by tests)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``webfl run`` in a subprocess on a fresh data dir; its output goes to a log file."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "server.log"
        self.admin_token = "test-admin-" + os.urandom(8).hex()
        self.start()

    def start(self) -> None:
        env = os.environ | {"WEBFL_PORT": str(self.port), "WEBFL_DATA_DIR": str(self.data_dir),
                            "WEBFL_ADMIN_TOKEN": self.admin_token}
        self._log = self.log_path.open("a")
        self.proc = subprocess.Popen([sys.executable, "-m", "server.cli", "run"], cwd=ROOT, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                urllib.request.urlopen(f"{self.url}/api/health", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not come up:\n{self.log()}")

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        """A JSON request against the live server (admin token unless another is given)."""
        import json

        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {token or self.admin_token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as response:
            return json.load(response)

    def demo_task(self) -> dict:
        return self.api("GET", "/api/admin/tasks")["tasks"][0]

    def join_demo(self) -> dict:
        return self.api("POST", "/api/join", {"code": self.demo_task()["join_code"]})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def create_task(self, title: str = "test", **config) -> dict:
        """A new task through the admin API, once its bundle is ready."""
        task = self.api("POST", "/api/admin/tasks", {"title": title, "config": config})
        deadline = time.monotonic() + 120
        while task["bundle_status"] != "ready":
            if task["bundle_status"] == "failed" or time.monotonic() > deadline:
                raise RuntimeError(f"bundle build failed: {task}")
            time.sleep(0.2)
            task = self.api("GET", f"/api/admin/tasks/{task['id']}")
        return task

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def chrome_options(user_data_dir: str, width: int = 1280, height: int = 900):
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={user_data_dir}",
                 f"--window-size={width},{height}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return opts


def wait_ready(driver, timeout: float = 90) -> str:
    """Wait for the page's documented state to leave 'loading'; return it."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = driver.execute_script("return document.documentElement.dataset.webflState")
        if state in ("ready", "error"):
            return state
        time.sleep(0.2)
    return state or "timeout"
