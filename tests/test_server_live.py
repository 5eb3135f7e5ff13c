"""The real server (gunicorn, as `make run` starts it) over real HTTP."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from live import ROOT


def fetch(url: str, headers: dict | None = None):
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30)


def test_vendor_files_have_the_right_types_and_headers(live_server):
    r = fetch(live_server.url + "/vendor/pyodide/pyodide.asm.wasm")
    assert r.headers["Content-Type"] == "application/wasm"
    assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert "immutable" in r.headers["Cache-Control"]
    assert fetch(live_server.url + "/vendor/pyodide/pyodide.mjs").headers["Content-Type"].startswith("text/javascript")
    page = fetch(live_server.url + "/")
    assert page.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert b'data-webfl-state="loading"' in page.read()


def test_compressible_files_are_served_gzipped(live_server):
    r = fetch(live_server.url + "/vendor/pyodide/pyodide.asm.wasm", {"Accept-Encoding": "gzip"})
    body = r.read()
    assert r.headers.get("Content-Encoding") == "gzip"
    assert len(body) < 0.6 * int(fetch(live_server.url + "/vendor/pyodide/pyodide.asm.wasm").headers["Content-Length"])


@pytest.mark.parametrize("path", ["/vendor/../server/app.py", "/static/..%2f..%2fpyproject.toml",
                                  "/vendor/%2e%2e/%2e%2e/pyproject.toml", "/static/../../etc/passwd"])
def test_path_traversal_is_refused(live_server, path):
    with pytest.raises(urllib.error.HTTPError) as err:
        fetch(live_server.url + path)
    assert err.value.code == 404


def test_oversized_update_is_refused_before_the_body_is_sent(live_server):
    joined = live_server.join_demo()
    request = (f"POST /api/tasks/{joined['task_id']}/updates HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {joined['token']}\r\nContent-Length: 50000000\r\n"
               "X-WebFL-Base-Version: 0\r\nX-WebFL-Samples: 1\r\nIdempotency-Key: big\r\n\r\n")
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=15) as s:
        s.sendall(request.encode())  # and not one byte of the 50 MB body
        reply = s.recv(4096).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413"), reply


def test_cli_help_explains_commands_and_settings():
    out = subprocess.run([sys.executable, "-m", "server.cli", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "run" in out.stdout and "export" in out.stdout
    run_help = subprocess.run([sys.executable, "-m", "server.cli", "run", "--help"], capture_output=True,
                              text=True, cwd=ROOT).stdout
    assert "WEBFL_PORT" in run_help and "WEBFL_DATA_DIR" in run_help


def test_every_subcommand_has_help_with_an_example():
    """Subcommands come from the rooms' entry points; each explains itself with an example."""
    from importlib.metadata import entry_points

    names = sorted(ep.name for ep in entry_points(group="webfl.commands"))
    assert names == ["client", "copy-instance", "experiment", "export", "reset-admin-token", "run", "study-export"]
    listing = subprocess.run([sys.executable, "-m", "server.cli", "--help"], capture_output=True, text=True,
                             cwd=ROOT).stdout
    for name in names:
        assert name in listing
        out = subprocess.run([sys.executable, "-m", "server.cli", name, "--help"], capture_output=True, text=True,
                             cwd=ROOT)
        assert out.returncode == 0 and re.search(r"examples?:", out.stdout) and f"webfl {name}" in out.stdout, \
            out.stdout


def test_tokens_never_reach_the_server_log(live_server):
    joined = live_server.join_demo()
    for token in (joined["token"], live_server.admin_token, "wrong-token-xyz"):
        try:
            fetch(f"{live_server.url}/api/tasks/{joined['task_id']}/manifest", {"Authorization": f"Bearer {token}"})
        except urllib.error.HTTPError:
            pass
    log = live_server.log()
    assert joined["token"] not in log and live_server.admin_token not in log and "wrong-token-xyz" not in log
