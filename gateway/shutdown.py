"""The process's graceful end, as requests see it: one :class:`Shutdown` per app (gateway.server drives it).

Every request runs under :meth:`Shutdown.bound`, so the shutdown knows what is in flight and can end it at
its deadline: a plain request then answers 503 ``server_shutting_down``; an open stream (gateway.api.events) ends
with that error as its last event and ``[DONE]``. Nothing is cut without a word, and the deadline is one
deadline: aiohttp's own wait for handlers, left alone, takes its timeout twice (it waits, cancels, and
waits again), and cuts streams with a bare close.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any

from gateway.errors import ServerShuttingDown

#: how long what was ended at the deadline gets to write its last words and return
END_GRACE = 0.5


class Shutdown:
    def __init__(self) -> None:
        #: SIGTERM came: /health answers 503 "draining", every answer closes its connection
        self.draining = False
        #: the deadline passed: whatever still runs is being ended
        self.over = False
        self._running: set[asyncio.Task[Any]] = set()
        self._ended: set[asyncio.Task[Any]] = set()  # cancelled by the shutdown, not by a client
        self._idle: asyncio.Event | None = None

    def bound(self) -> _Bound:
        """An ``async with`` block for one request: past the deadline it raises :class:`ServerShuttingDown`."""
        return _Bound(self)

    async def finish(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the requests in flight, then end the rest and let them return."""
        await self._until_idle(timeout)
        self.over = True  # before the cancellations land: sse.relay reads it to tell them from a client's
        for task in self._running:
            self._end(task)
        await self._until_idle(END_GRACE)

    async def _until_idle(self, timeout: float) -> None:
        if not self._running:
            return
        self._idle = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    def _end(self, task: asyncio.Task[Any]) -> None:
        self._ended.add(task)
        task.cancel()

    def _leave(self, task: asyncio.Task[Any]) -> bool:
        """Whether the shutdown cancelled ``task``."""
        self._running.discard(task)
        if not self._running and self._idle is not None:
            self._idle.set()
        if task not in self._ended:
            return False
        self._ended.discard(task)
        return True


class _Bound:
    """What ``asyncio.timeout`` would do, made for a deadline nobody knows in advance: no Timeout object
    per request (every request enters one), only its task in a set, cancelled at the deadline."""

    __slots__ = ("_shutdown", "_task")
    _task: asyncio.Task[Any]

    def __init__(self, shutdown: Shutdown) -> None:
        self._shutdown = shutdown

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        assert task is not None  # a request is handled in a task of its own
        self._task = task
        self._shutdown._running.add(task)
        if self._shutdown.over:
            self._shutdown._end(task)

    async def __aexit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # A cancellation of the shutdown's becomes its error; a client's (or another one, still pending)
        # stays a cancellation. A stream that ended itself in words (sse.relay) returns normally.
        if self._shutdown._leave(self._task) and self._task.uncancel() == 0 and typ is asyncio.CancelledError:
            raise ServerShuttingDown("The server is shutting down; retry the request.") from exc
