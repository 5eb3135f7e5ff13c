"""A sliding-window limit per key (for example joins per address) within one process."""
from __future__ import annotations

import threading
import time
from collections import deque

from .errors import TooManyRequests


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key; keys idle for a window are
    forgotten, so memory stays bounded by the keys active in the last window."""

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, what: str) -> None:
        """Count one event for ``key`` or raise :class:`TooManyRequests` (nothing counted)."""
        now = time.monotonic()
        with self._lock:
            if len(self._events) >= self.max_keys:
                self._forget_idle(now)
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                wait = events[0] + self.window - now
                raise TooManyRequests(f"too many {what}; try again in {wait:.0f} seconds", wait)
            events.append(now)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, e in self._events.items() if not e or e[-1] <= now - self.window]:
            del self._events[key]
