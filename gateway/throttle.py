"""Throttling repeated failures per key (e.g. wrong secrets for one client_id at the token endpoint)."""

from __future__ import annotations

import math
import time
from collections import deque


class FailureThrottle:
    """At most ``limit`` failures per key within ``window`` seconds; then the key waits until the oldest
    of them leaves the window. Memory is bounded: at most ``max_keys`` keys are remembered."""

    def __init__(self, limit: int = 5, window: float = 60.0, max_keys: int = 10_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, key: str, now: float | None = None) -> int | None:
        """Seconds the key must wait before trying again, or None if it may try now."""
        now = time.monotonic() if now is None else now
        recent = self._recent(key, now)
        if recent is None or len(recent) < self.limit:
            return None
        return max(1, math.ceil(recent[0] + self.window - now))

    def failed(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        recent = self._recent(key, now)
        if recent is None:
            if len(self._failures) >= self.max_keys:
                self._prune(now)
            recent = self._failures[key] = deque(maxlen=self.limit)
        recent.append(now)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float] | None:
        recent = self._failures.get(key)
        if recent is not None:
            while recent and recent[0] <= now - self.window:
                recent.popleft()
            if not recent:
                del self._failures[key]
                return None
        return recent

    def _prune(self, now: float) -> None:
        for key in [k for k, d in self._failures.items() if d[-1] <= now - self.window]:
            del self._failures[key]
        while len(self._failures) >= self.max_keys:  # still full of live keys: forget the oldest
            del self._failures[next(iter(self._failures))]
