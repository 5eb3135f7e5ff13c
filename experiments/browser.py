"""Headless Chromium for experiments and tests: Debian's binaries, offline-safe flags."""
from __future__ import annotations

import shutil
import time


def chrome_options(user_data_dir: str, width: int = 1280, height: int = 900, webgpu: bool = False,
                   network_log: bool = False, chrome_log: bool = False):
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={user_data_dir}", f"--window-size={width},{height}",
             # experiments run many tabs in the background: do not throttle their timers
             "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
             "--disable-backgrounding-occluded-windows"]
    if webgpu:
        flags.append("--enable-unsafe-webgpu")
    if chrome_log:  # Chromium's own messages (why a renderer died, say) go to chromedriver's log
        flags += ["--enable-logging=stderr", "--v=0"]
    for flag in flags:
        opts.add_argument(flag)
    # the performance log carries DevTools network events (privacy tests read every request)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", **({"performance": "ALL"} if network_log else {})})
    return opts


def start_chrome(user_data_dir: str, log_path: str | None = None, **kwargs):
    """Chromium under chromedriver; with ``log_path``, Chromium's own log is written there."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver",
                      **({"log_output": log_path, "service_args": ["--log-level=SEVERE"]} if log_path else {}))
    return webdriver.Chrome(options=chrome_options(user_data_dir, chrome_log=log_path is not None, **kwargs),
                            service=service)


def wait_state(driver, timeout: float = 120) -> str:
    """Wait until ``dataset.webflState`` leaves ``loading``."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = driver.execute_script("return document.documentElement.dataset.webflState")
        if state in ("ready", "error"):
            return state
        time.sleep(0.2)
    return state or "timeout"
