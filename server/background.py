"""The background work of a server, run by exactly one process at a time.

Recovery (merging acknowledged updates a stop left pending), bundle builds that nobody is
finishing, the evaluator and the round-deadline ticker belong to whichever serving process
holds the ``background`` lease: with the embedded SQLite default that is its one gunicorn
worker; with PostgreSQL, any number of processes race for an advisory lock, one wins, and
when it dies (its connection closes) another takes over within a few seconds. Never the
gunicorn master; in tests, whoever builds an app and wants it live.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from flask import Flask

from .services import Services

LEASE = "webfl:background"
RETRY_SECONDS = 2.0      # how often a process without the lease tries to take it
HOUSEKEEPING_TICKS = 10  # the leader re-checks builds and evaluations every this many ticks


@dataclass
class Background:
    services: Services
    tick_seconds: float
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lease: object | None = None

    def stop(self) -> None:
        self.stop_event.set()
        self.services.evaluator.stop()
        for thread in self.threads:
            thread.join(5)
        if self.lease is not None:
            self.lease.release()
            self.lease = None

    def _lead(self) -> None:
        """Holding the lease: recover, resume builds, start the evaluator and the ticker."""
        s = self.services
        s.updates.recover()
        s.tasks.resume_builds()
        s.evaluator.start()
        s.evaluator.catch_up()
        if self.tick_seconds > 0:
            self._thread(self._tick, "round-ticker")

    def _thread(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _wait_for_lease(self) -> None:
        while not self.stop_event.wait(RETRY_SECONDS):
            try:
                self.lease = self.services.db.try_lease(LEASE)
            except Exception as exc:  # the database may be restarting: try again
                print(f"webfl: background lease: {exc}", flush=True)
                continue
            if self.lease is not None:
                print("webfl: this process now runs the background work", flush=True)
                self._lead()
                return

    def _tick(self) -> None:
        """Close synchronous rounds at their deadline even when no request arrives; now and
        then, pick up builds and evaluations other processes left."""
        s = self.services
        n = 0
        while not self.stop_event.wait(self.tick_seconds):
            n += 1
            try:
                s.updates.tick()
                if n % HOUSEKEEPING_TICKS == 0:
                    s.tasks.resume_builds()
                    s.evaluator.catch_up()
            except Exception as exc:  # never let the ticker die silently
                print(f"webfl: round ticker: {exc}", flush=True)


def start(app: Flask) -> Background:
    """Take the background lease if free (then recover synchronously, before serving) or
    keep trying on a thread."""
    s: Services = app.extensions["webfl"]
    background = Background(s, app.config["TICK_SECONDS"])
    background.lease = s.db.try_lease(LEASE)
    if background.lease is not None:
        background._lead()
    else:
        background._thread(background._wait_for_lease, "background-lease")
    app.extensions["webfl-background"] = background
    return background
