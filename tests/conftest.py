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
    """A fresh headless Chromium profile; on failure, dump console, server log, screenshot and
    Chromium's own log (a crashed tab answers nothing, so each part is tried on its own)."""
    profile = tempfile.mkdtemp(prefix="webfl-chrome-")
    chrome_log = Path(profile) / "chromium.log"
    driver = start_chrome(profile, log_path=str(chrome_log))
    driver.set_script_timeout(120)
    try:
        yield driver
        failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
        if failed:
            _dump_failure(request.node.name, driver, live_server, chrome_log)
    finally:
        try:
            driver.quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)


def _dump_failure(name: str, driver, live_server, chrome_log: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        driver.switch_to.alert.dismiss()  # an open dialog blocks screenshots
    except Exception:
        pass
    try:
        driver.save_screenshot(str(ARTIFACTS / f"{name}-failure.png"))
    except Exception as exc:
        print(f"\n(no screenshot: {str(exc).splitlines()[0]})")
    print("\n--- browser console ---")
    try:
        for entry in driver.get_log("browser"):
            print(f"{entry['level']}: {entry['message']}")
    except Exception as exc:
        print(f"(no console: {str(exc).splitlines()[0]})")
    print("--- server log (tail) ---")
    print(live_server.log()[-5000:])
    print("--- Chromium's log (tail) ---")
    lines = chrome_log.read_text(errors="replace").splitlines() if chrome_log.exists() else []
    # D-Bus complaints are a headless machine's noise
    print("\n".join(line for line in lines if "dbus" not in line.lower())[-5000:] or "(empty)")


# trylast: inside pytest-rerunfailures' wrapper, so a crash named here is seen when it decides
@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
    if rep.when == "call" and rep.failed and call.excinfo is not None and "browser" in getattr(item, "funcargs", {}):
        _say_if_the_tab_crashed(item.funcargs["browser"], call.excinfo.value, rep)


def _say_if_the_tab_crashed(driver, error: BaseException, rep) -> None:
    """A crashed tab often surfaces as a wait that timed out (waits ignore WebDriver errors):
    chain the crash to the failure and name it, so the one rerun for crashed tabs applies."""
    from selenium.common.exceptions import WebDriverException

    try:
        driver.execute_script("return 1")
        return
    except WebDriverException as exc:
        if "tab crashed" not in str(exc):
            return
        crash = exc
    if error.__cause__ is None and error.__context__ is None:
        error.__context__ = crash
    reprcrash = getattr(rep.longrepr, "reprcrash", None)
    if reprcrash is not None and "tab crashed" not in reprcrash.message:
        reprcrash.message = f"tab crashed (found after: {reprcrash.message})"


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
