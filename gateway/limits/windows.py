"""Shared counters for budgets: sliding windows kept in memory (one process) or in Redis (any number).

A window of ``window`` seconds is 60 buckets of ``window / 60`` seconds: usage is the sum of the last
60 buckets, so the window slides in steps of 1/60 of itself (1 s for a minute, 1 min for an hour)
instead of resetting on the boundary. Each backend answers the same two questions atomically:
``admit`` (are all these windows within budget? if so, count what admission consumes) and ``add``
(count usage that became known later: tokens, cost, failures).
"""

from __future__ import annotations

import abc
import time
from collections import deque
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


@dataclass(slots=True)  # not frozen: one is made per window per request, and frozen init is slow
class Reading:
    used: float  # after this admission
    retry_after: float | None  # seconds until this window admits again (None: it admits now)
    reset: float  # seconds until the window is empty again


class StateUnavailable(Exception):
    """The backend cannot be reached; the caller decides between failing open and closed."""


class StateBusy(StateUnavailable):
    """The backend is up, but this request waited too long for one of its connections: this request fails,
    and nothing else (the backend is not judged down, as it is on :class:`StateUnavailable`)."""


class State(abc.ABC):
    backend = "?"

    @abc.abstractmethod
    async def admit(self, checks: list[Check]) -> tuple[bool, list[Reading]]:
        """All-or-nothing: if every check admits, count their ``consume``; else count nothing."""

    @abc.abstractmethod
    async def add(self, items: list[tuple[str, float, float]]) -> None:
        """Count ``(key, window, amount)`` now."""

    def add_now(self, items: list[tuple[str, float, float]]) -> bool:
        """Count ``items`` at once if this backend can without waiting (True); else False, and :meth:`add`
        must be awaited (an answer's usage is counted after the answer: nothing should wait for a task
        that has nothing to wait for)."""
        return False

    @abc.abstractmethod
    async def clear(self, keys: list[str]) -> None: ...

    def health(self) -> dict[str, object]:
        return {"backend": self.backend, "ok": True}

    async def close(self) -> None:
        return None


class _Window:
    """The buckets of one window in time order, with their running total: O(1) per request."""

    __slots__ = ("entries", "total", "touched")

    def __init__(self) -> None:
        self.entries: deque[list[float]] = deque()  # [bucket index, amount]
        self.total = 0.0
        self.touched = 0.0

    def trim(self, oldest: int) -> None:
        entries = self.entries
        while entries and entries[0][0] < oldest:
            self.total -= entries.popleft()[1]
        if not entries:
            self.total = 0.0  # no float drift survives an empty window

    def add(self, idx: int, amount: float, now: float) -> None:
        entries = self.entries
        if entries and entries[-1][0] == idx:
            entries[-1][1] += amount
        else:
            entries.append([idx, amount])
        self.total += amount
        self.touched = now

    def judge(self, check: Check, now: float) -> tuple[bool, Reading, int]:
        """Judge ``check`` at ``now`` (trimming what left the window); also the current bucket index.

        The Lua script in gateway/limits/redis_windows.py is this same computation over a Redis hash.
        """
        width = check.window / BUCKETS
        idx = int(now // width)
        entries = self.entries
        if entries and entries[0][0] <= idx - BUCKETS:
            self.trim(idx - BUCKETS + 1)
        used = self.total
        consume = check.consume
        ok = used + consume <= check.limit if consume > 0 else used < check.limit
        retry = None
        if not ok:
            need, freed = used + consume - check.limit, 0.0
            for k, amount in entries:
                freed += amount
                if freed >= need if consume > 0 else freed > need:
                    retry = (k + BUCKETS) * width - now
                    break
        reset = (entries[-1][0] + BUCKETS) * width - now if entries else 0.0
        return ok, Reading(used, retry, reset), idx


class MemoryState(State):
    """One process's windows. Bounded: past ``max_keys`` windows, those untouched for a day (longer than
    any window) are dropped, then the least recently created."""

    backend = "memory"

    def __init__(self, max_keys: int = 100_000) -> None:
        self._windows: dict[str, _Window] = {}
        self._max_keys = max_keys

    async def admit(self, checks: list[Check]) -> tuple[bool, list[Reading]]:
        now = time.time()
        get = self._windows.get
        judged = []
        admitted = True
        for check in checks:
            window = get(check.key) or self._window(check.key, now)
            ok, reading, idx = window.judge(check, now)
            admitted = admitted and ok
            judged.append((window, check, reading, idx))
        if not admitted:
            return False, [reading for _, _, reading, _ in judged]
        readings = []
        for window, check, reading, idx in judged:
            consume = check.consume
            if consume > 0:
                window.add(idx, consume, now)
                reading.used += consume
                reading.reset = (idx + BUCKETS) * check.window / BUCKETS - now
            readings.append(reading)
        return True, readings

    async def add(self, items: list[tuple[str, float, float]]) -> None:
        self.add_now(items)

    def add_now(self, items: list[tuple[str, float, float]]) -> bool:
        now = time.time()
        get = self._windows.get
        for key, window, amount in items:
            (get(key) or self._window(key, now)).add(int(now // (window / BUCKETS)), amount, now)
        return True

    async def clear(self, keys: list[str]) -> None:
        for key in keys:
            self._windows.pop(key, None)

    def _window(self, key: str, now: float) -> _Window:
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= self._max_keys:
                self._prune(now)
            window = self._windows[key] = _Window()
            window.touched = now
        return window

    def _prune(self, now: float) -> None:
        for key in [k for k, w in self._windows.items() if w.touched < now - 86400]:
            del self._windows[key]
        while len(self._windows) >= self._max_keys:
            del self._windows[next(iter(self._windows))]
