"""Time limits for upstream calls in flight, kept by one periodic check instead of a timer per call.

An aiohttp ``sock_read``/``total`` timeout or an ``asyncio.timeout`` schedules (and reschedules and
cancels) a loop timer for every call, and a plain answer's call has two phases: on the bench, side by
side, that costs enough more than this keeper to pay for it (figures in bench/NOTES.md; a test holds
the two equal). Here a call only puts itself into the bucket of the tick its deadline falls in (a set,
by tick number) and takes itself out when it ends; one timer, running only while something is armed,
fires what is due each tick. A limit expires within one tick (``TICK`` seconds) after its deadline,
never before it.

Expiry cancels the call's task, and the ``with`` block turns that cancellation into ``TimeoutError``
(as ``asyncio.timeout`` does: a cancellation from elsewhere, e.g. the client going away, stays one).
"""

from __future__ import annotations

import asyncio
import math
import time
from types import TracebackType

TICK = 0.05


class Deadlines:
    """The limits of many calls; one per provider (it may outlive a reload while its calls finish)."""

    __slots__ = ("_tick", "_buckets", "_next", "_handle", "_loop")

    def __init__(self, tick: float = TICK) -> None:
        self._tick = tick
        self._buckets: dict[int, set[Limit]] = {}  # tick number -> the limits due at its end
        self._next = 0  # the first tick number not yet fired
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def limit(self, seconds: float) -> Limit:
        """A ``with`` block that raises ``TimeoutError`` once it has run for ``seconds``."""
        return Limit(self, seconds)

    def _arm(self, limit: Limit, deadline: float) -> int:
        if self._handle is None:
            self._loop = asyncio.get_running_loop()
            self._next = int(time.monotonic() / self._tick)
            self._handle = self._loop.call_later(self._tick, self._fire)
        slot = max(math.ceil(deadline / self._tick), self._next)
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = set()
        bucket.add(limit)
        return slot

    def _disarm(self, limit: Limit, slot: int) -> None:
        bucket = self._buckets.get(slot)
        if bucket is not None:
            bucket.discard(limit)

    def _fire(self) -> None:
        assert self._loop is not None
        now = time.monotonic()
        due_until = int(now / self._tick)  # tick n ends at (n * tick): every slot up to here is due
        buckets = self._buckets
        for slot in range(self._next, due_until + 1):
            for limit in buckets.pop(slot, ()):
                limit.expire()
        self._next = due_until + 1
        self._handle = self._loop.call_later(self._next * self._tick - now, self._fire) if buckets else None


class Limit:
    """One call's limit; :meth:`restart` gives it a new one from now (the next phase of the call)."""

    __slots__ = ("_owner", "_seconds", "_slot", "_task", "fired")

    def __init__(self, owner: Deadlines, seconds: float) -> None:
        self._owner, self._seconds = owner, seconds
        self._slot = -1
        self._task: asyncio.Task[object] | None = None
        self.fired = False

    def __enter__(self) -> Limit:
        self._task = asyncio.current_task()
        self._slot = self._owner._arm(self, time.monotonic() + self._seconds)
        return self

    def restart(self, seconds: float) -> None:
        """From now on, ``seconds`` more (unless it has expired already)."""
        if not self.fired:
            self._owner._disarm(self, self._slot)
            self._slot = self._owner._arm(self, time.monotonic() + seconds)

    def expire(self) -> None:
        self.fired = True
        if self._task is not None:
            self._task.cancel()

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if not self.fired:
            self._owner._disarm(self, self._slot)
            return
        assert self._task is not None
        if self._task.uncancel() == 0 and typ is asyncio.CancelledError:
            raise TimeoutError from exc
