"""Shared counters for budgets: sliding windows kept in memory (one process) or in Redis (any number).

A window of ``window`` seconds is 60 buckets of ``window / 60`` seconds: usage is the sum of the last
60 buckets, so the window slides in steps of 1/60 of itself (1 s for a minute, 1 min for an hour)
instead of resetting on the boundary. Each backend answers the same two questions atomically:
``admit`` (are all these windows within budget? if so, count what admission consumes) and ``add``
(count usage that became known later: tokens, cost, failures).
"""

from __future__ import annotations

import abc
import math
import time
from dataclasses import dataclass

BUCKETS = 60


@dataclass(frozen=True, slots=True)
class Check:
    """One window to look at. ``consume`` > 0: admitted only if ``used + consume <= limit``, and then
    counted; 0: admitted while ``used < limit`` (the usage is added later, once known)."""

    key: str
    window: float
    limit: float
    consume: float = 0.0


@dataclass(frozen=True, slots=True)
class Reading:
    used: float  # after this admission
    retry_after: float | None  # seconds until this window admits again (None: it admits now)
    reset: float  # seconds until the window is empty again


class StateUnavailable(Exception):
    """The backend cannot be reached; the caller decides between failing open and closed."""


class State(abc.ABC):
    backend = "?"

    @abc.abstractmethod
    async def admit(self, checks: list[Check]) -> tuple[bool, list[Reading]]:
        """All-or-nothing: if every check admits, count their ``consume``; else count nothing."""

    @abc.abstractmethod
    async def add(self, items: list[tuple[str, float, float]]) -> None:
        """Count ``(key, window, amount)`` now."""

    @abc.abstractmethod
    async def clear(self, keys: list[str]) -> None: ...

    def health(self) -> dict[str, object]:
        return {"backend": self.backend, "ok": True}

    async def close(self) -> None:
        return None


def evaluate(buckets: dict[int, float], check: Check, now: float) -> tuple[bool, Reading, int]:
    """Trim ``buckets`` to the window, and judge ``check`` at ``now``; also the current bucket index.

    The Lua script in gateway/redis_state.py is this same function, line for line.
    """
    width = check.window / BUCKETS
    idx = math.floor(now / width)
    oldest = idx - BUCKETS + 1
    for k in [k for k in buckets if k < oldest]:
        del buckets[k]
    used = sum(buckets.values())
    ok = used + check.consume <= check.limit if check.consume > 0 else used < check.limit
    retry = None
    if not ok:
        need, freed = used + check.consume - check.limit, 0.0
        for k in sorted(buckets):
            freed += buckets[k]
            if freed >= need if check.consume > 0 else freed > need:
                retry = (k + BUCKETS) * width - now
                break
    newest = max(buckets) if buckets else None
    reset = (newest + BUCKETS) * width - now if newest is not None else 0.0
    return ok, Reading(used, retry, reset), idx


class MemoryState(State):
    """One process's windows. Bounded: past ``max_keys`` windows, those untouched for a day (longer than
    any window) are dropped, then the least recently created."""

    backend = "memory"

    def __init__(self, max_keys: int = 100_000) -> None:
        self._windows: dict[str, dict[int, float]] = {}
        self._touched: dict[str, float] = {}
        self._max_keys = max_keys

    async def admit(self, checks: list[Check]) -> tuple[bool, list[Reading]]:
        now = time.time()
        results = [evaluate(self._windows.get(c.key, {}), c, now) for c in checks]
        admitted = all(ok for ok, _, _ in results)
        readings = []
        for check, (_, reading, idx) in zip(checks, results):
            if admitted and check.consume > 0:
                self._count(check.key, idx, check.consume, now)
                width = check.window / BUCKETS
                reading = Reading(reading.used + check.consume, None, (idx + BUCKETS) * width - now)
            readings.append(reading)
        return admitted, readings

    async def add(self, items: list[tuple[str, float, float]]) -> None:
        now = time.time()
        for key, window, amount in items:
            self._count(key, math.floor(now / (window / BUCKETS)), amount, now)

    async def clear(self, keys: list[str]) -> None:
        for key in keys:
            self._windows.pop(key, None)
            self._touched.pop(key, None)

    def _count(self, key: str, idx: int, amount: float, now: float) -> None:
        buckets = self._windows.get(key)
        if buckets is None:
            if len(self._windows) >= self._max_keys:
                self._prune(now)
            buckets = self._windows[key] = {}
        buckets[idx] = buckets.get(idx, 0.0) + amount
        self._touched[key] = now

    def _prune(self, now: float) -> None:
        for key in [k for k, t in self._touched.items() if t < now - 86400]:
            del self._windows[key], self._touched[key]
        while len(self._windows) >= self._max_keys:
            key = next(iter(self._windows))
            del self._windows[key], self._touched[key]


def make_state(config) -> State:  # type: ignore[no-untyped-def]
    if config.backend == "redis":
        from gateway.redis_state import RedisState

        return RedisState(config.redis_url, config.key_prefix)
    return MemoryState()
