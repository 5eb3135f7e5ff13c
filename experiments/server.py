"""A real webfl server in a subprocess (``webfl run``) on a free loopback port.

Used by the experiment harness and by the test suite. Its output goes to a log file
that callers print when something fails.
"""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, data_dir: Path, port: int | None = None, env: dict | None = None,
                 admin_token: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.data_dir / "server.log"
        self.admin_token = admin_token or "admin-" + os.urandom(12).hex()
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self, timeout: float = 120) -> None:
        # Every simulated participant joins from 127.0.0.1: lift the per-address join limit.
        env = os.environ | {"WEBFL_PORT": str(self.port), "WEBFL_DATA_DIR": str(self.data_dir),
                            "WEBFL_ADMIN_TOKEN": self.admin_token, "WEBFL_JOINS_PER_MINUTE": "100000"} | self.extra_env
        self._log = self.log_path.open("a")
        self.proc = subprocess.Popen([sys.executable, "-m", "server.cli", "run"], cwd=ROOT, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                urllib.request.urlopen(f"{self.url}/api/health", timeout=2)
                if self.api("GET", "/api/admin/tasks")["tasks"][0]["bundle_status"] in ("ready", "failed"):
                    return  # the demo task, built by the worker's background work
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not come up:\n{self.log()}")

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None,
            raw: bytes | None = None) -> dict:
        """A JSON request (admin token unless another is given)."""
        return json.loads(self.raw(method, path, body, token, raw))

    def raw(self, method: str, path: str, body: dict | None = None, token: str | None = None,
            data: bytes | None = None) -> bytes:
        """A request's response body as bytes (admin token unless another is given)."""
        payload = data if data is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=payload, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as response:
                return response.read()
        except urllib.error.HTTPError as exc:  # say what the server said, not only the status
            body = exc.read()
            raise urllib.error.HTTPError(exc.url, exc.code, f"{method} {path}: {body[:2000].decode(errors='replace')}",
                                         exc.headers, io.BytesIO(body)) from None

    def create_task(self, title: str = "task", **config) -> dict:
        """A new task, once its bundle is ready."""
        task = self.api("POST", "/api/admin/tasks", {"title": title, "config": config})
        deadline = time.monotonic() + 300
        while task["bundle_status"] != "ready":
            if task["bundle_status"] == "failed" or time.monotonic() > deadline:
                raise RuntimeError(f"bundle build failed: {task}")
            time.sleep(0.2)
            task = self.api("GET", f"/api/admin/tasks/{task['id']}")
        return task

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the whole process group (gunicorn's master and worker): no clean-up at all."""
        import signal

        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None
            self._log.close()
