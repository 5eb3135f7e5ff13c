"""The background work of a server, started in exactly one process.

Recovery (merging acknowledged updates a stop left pending), interrupted bundle builds,
the evaluator and the round-deadline ticker all belong to the process that serves
requests: with gunicorn, its one worker (``post_worker_init``), never the master; in
tests, whoever builds an app and wants it live.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from flask import Flask

from .services import Services


@dataclass
class Background:
    services: Services
    stop_event: threading.Event
    ticker: threading.Thread | None

    def stop(self) -> None:
        self.stop_event.set()
        self.services.evaluator.stop()


def start(app: Flask) -> Background:
    """Recover, resume builds, start the evaluator and (if TICK_SECONDS > 0) the ticker."""
    s: Services = app.extensions["webfl"]
    s.updates.recover()
    s.tasks.resume_builds()
    s.evaluator.start()
    stop = threading.Event()
    ticker = None
    seconds = app.config["TICK_SECONDS"]
    if seconds > 0:
        ticker = threading.Thread(target=_tick, args=(s, seconds, stop), name="round-ticker", daemon=True)
        ticker.start()
    background = Background(s, stop, ticker)
    app.extensions["webfl-background"] = background
    return background


def _tick(s: Services, seconds: float, stop: threading.Event) -> None:
    """Close synchronous rounds at their deadline even when no request arrives."""
    while not stop.wait(seconds):
        try:
            s.updates.tick()
        except Exception as exc:  # never let the ticker die silently
            print(f"webfl: round ticker: {exc}", flush=True)
