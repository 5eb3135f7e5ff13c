"""Shared fixtures: built bundles, a real server on a free port, headless Chromium.

Browser tests print the browser console and the server log when they fail.
"""
from __future__ import annotations

import shutil
from pathlib import Path
import tempfile

import pytest

from experiments.browser import start_chrome
from live import ARTIFACTS, LiveServer


@pytest.fixture(scope="session")
def bundle_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bundles")


@pytest.fixture(scope="session")
def digits_bundle(bundle_root) -> Path:
    from export import build_bundle

    out = bundle_root / "digits"
    build_bundle("digits_cnn", [str(d) for d in range(10)], out, lr=0.01)
    return out


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("server-data"))
    yield server
    server.stop()


@pytest.fixture
def browser(request, live_server):
    """A fresh headless Chromium profile; on failure, dump console, server log, screenshot."""
    profile = tempfile.mkdtemp(prefix="webfl-chrome-")
    driver = start_chrome(profile)
    driver.set_script_timeout(120)
    yield driver
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            driver.switch_to.alert.dismiss()  # an open dialog blocks screenshots
        except Exception:
            pass
        driver.save_screenshot(str(ARTIFACTS / f"{request.node.name}-failure.png"))
        print("\n--- browser console ---")
        for entry in driver.get_log("browser"):
            print(f"{entry['level']}: {entry['message']}")
        print("--- server log (tail) ---")
        print(live_server.log()[-5000:])
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL server for the session (each test takes its own database)."""
    from pgcluster import Cluster

    cluster = Cluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster):
    url = pg_cluster.new_database()
    yield url
    pg_cluster.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    """The database URL of each backend in turn: '' (embedded SQLite) or a fresh PostgreSQL
    database. Tests taking it run on both, so the backends cannot drift."""
    if request.param == "sqlite":
        return ""
    return request.getfixturevalue("pg_url")
