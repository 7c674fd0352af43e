"""The MCP endpoint's sessions: one per ``initialize``, named by its ``Mcp-Session-Id``, in this process's
memory. Bounded (the oldest idle one goes first when full) and expiring (unused for ``IDLE_SECONDS``).

A session belongs to the client that opened it: another client's secret with its id finds nothing. It
keeps the protocol revision negotiated and the calls in flight by JSON-RPC id, so a
``notifications/cancelled`` can cancel the one it names. Under ``serve --workers`` a session lives in
the worker that opened it; a request that reaches another worker gets 404 and the client initializes
again, as the transport's spec asks of it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

#: a session not used for this long is forgotten
IDLE_SECONDS = 3600.0
#: sessions kept at most; the least recently used goes first
MAX_SESSIONS = 10_000


@dataclass(slots=True)
class Session:
    id: str
    client: str
    version: str  # the protocol revision negotiated at initialize
    used: float  # time.monotonic() of the last request
    calls: dict[str | int, asyncio.Task[object]] = field(default_factory=dict)  # in flight, by JSON-RPC id

    def cancel(self, request_id: str | int) -> bool:
        task = self.calls.get(request_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    def end(self) -> None:
        for task in self.calls.values():
            task.cancel()


class Sessions:
    """One per app: sessions outlive a config reload (their client is looked up again on each request)."""

    def __init__(self, limit: int = MAX_SESSIONS, idle: float = IDLE_SECONDS) -> None:
        self._limit, self._idle = limit, idle
        self._by_id: OrderedDict[str, Session] = OrderedDict()  # least recently used first

    def open(self, client: str, version: str) -> Session:
        self._expire()
        while len(self._by_id) >= self._limit:
            _, oldest = self._by_id.popitem(last=False)
            oldest.end()
        session = Session(secrets.token_urlsafe(24), client, version, time.monotonic())
        self._by_id[session.id] = session
        return session

    def find(self, session_id: str, client: str) -> Session | None:
        """The client's live session of that id, marked used; None if unknown, expired or another's."""
        session = self._by_id.get(session_id)
        if session is None or session.client != client:
            return None
        now = time.monotonic()
        if now - session.used > self._idle:
            self.close(session_id)
            return None
        session.used = now
        self._by_id.move_to_end(session_id)
        return session

    def close(self, session_id: str) -> None:
        session = self._by_id.pop(session_id, None)
        if session is not None:
            session.end()

    def __len__(self) -> int:
        return len(self._by_id)

    def _expire(self) -> None:
        cutoff = time.monotonic() - self._idle
        while self._by_id:
            oldest = next(iter(self._by_id.values()))
            if oldest.used > cutoff:
                return
            self.close(oldest.id)
