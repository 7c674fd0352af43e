"""The MCP endpoint's sessions: one per ``initialize``, named by its ``Mcp-Session-Id``.

The id is sealed with the signing key (``{client}|{version}|{nonce}``, see gateway.auth.tokens.Seal), so
any process that shares the key (every ``serve --workers`` worker, replicas given one ``auth.signing_key``)
knows whose session it is and which protocol revision it speaks: another client's secret with its id
finds nothing, and a made-up id is never one. What a process keeps of a session it has seen (the calls
in flight, for ``notifications/cancelled``, and its GET stream) is made when an id first reaches it.

What must be shared to hold everywhere (a DELETE, the idle expiry, the per-client cap) goes to a
:class:`Shared` store when there is one (Redis, with ``state.backend: redis``): one round trip per
request. Without it each process holds them for itself: a session ended here is ended here only, and
each process counts a client's sessions it has seen against ``max_sessions_per_client``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from gateway.config import McpConfig

if TYPE_CHECKING:
    from gateway.auth.tokens import Seal

log = logging.getLogger("localrouter.mcp")

#: how a session id starts, and the purpose it is sealed for (an access token never opens as one)
ID_PREFIX = "lrs."
ID_CONTEXT = b"localrouter mcp session v1|"
#: what a list change is announced with, one per kind of list
LIST_CHANGES = (
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
    "notifications/resources/list_changed",
)

T = TypeVar("T")


class SharedUnavailable(Exception):
    """The shared store cannot be reached (with ``state.fail_closed``: the request is refused)."""


class Shared(Protocol):
    """The sessions every process sees alike (gateway.mcp.redis_sessions)."""

    async def open(self, client: str, session_id: str, idle: float, cap: int) -> list[str]:
        """Record a new session; the client's sessions that ended to keep it within ``cap``."""

    async def touch(self, client: str, session_id: str, idle: float, use: bool) -> bool:
        """Whether the session is live (not ended, used within ``idle``); ``use``: mark it used now."""

    async def close(self, client: str, session_id: str) -> None: ...


class Stream:
    """A session's server-to-client stream, while a GET holds it open: the notifications it is to send
    (each kind once, however often it came meanwhile), and whether it is to end."""

    def __init__(self, sees: Callable[[str], bool]) -> None:
        self.sees = sees  # whether the client's strategy may see anything of that server
        self._pending: dict[str, None] = {}
        self._wake = asyncio.Event()
        self._ending = False

    def push(self, method: str) -> None:
        self._pending[method] = None
        self._wake.set()

    def end(self) -> None:
        self._ending = True
        self._wake.set()

    async def next(self, timeout: float) -> list[str] | None:
        """The notifications to send now ([] when ``timeout`` passed without any); None once it is to end
        and nothing is left to send."""
        if not self._pending and not self._ending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()
        pending, self._pending = list(self._pending), {}
        if pending:
            return pending
        return None if self._ending else []


@dataclass(slots=True, eq=False)
class Session:
    """This process's part of a session."""

    id: str
    client: str
    version: str  # the protocol revision negotiated at initialize
    used: float  # time.monotonic() of the last request here
    calls: dict[str | int, asyncio.Task[object]] = field(default_factory=dict)  # in flight, by JSON-RPC id
    stream: Stream | None = None

    def cancel(self, request_id: str | int) -> bool:
        task = self.calls.get(request_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    def end(self) -> None:
        for task in self.calls.values():
            task.cancel()
        if self.stream is not None:
            self.stream.end()


def _owner(seal: Seal, session_id: str) -> tuple[str, str] | None:
    """``(client, version)`` of a genuine session id."""
    payload = seal.open(session_id)
    if payload is None:
        return None
    try:
        client, version, _ = payload.decode().rsplit("|", 2)
    except ValueError:
        return None
    return client, version


class Sessions:
    """One per process, kept across reloads (on the live runtime). ``shared``: the store every process sees;
    when it cannot be reached, a request goes on as without it, unless ``fail_closed``."""

    def __init__(self, config: McpConfig, shared: Shared | None = None, *, fail_closed: bool = False) -> None:
        self._config, self._shared, self._fail_closed = config, shared, fail_closed
        self._by_id: OrderedDict[str, Session] = OrderedDict()  # least recently used first
        self._by_client: dict[str, OrderedDict[str, None]] = {}  # the same, per client
        self._ended: OrderedDict[str, None] = OrderedDict()  # without a shared store: ids ended here, kept out
        self.closing = False  # the process is shutting down: no new streams

    async def open(self, client: str, version: str, seal: Seal) -> Session:
        session_id = seal.seal(f"{client}|{version}|{secrets.token_urlsafe(12)}".encode())
        if self._shared is not None:
            cap, idle = self._config.max_sessions_per_client, self._config.session_idle
            for ended in await self._ask(self._shared.open(client, session_id, idle, cap), []):
                self._end(ended)
        else:
            self._expire()
        return self._adopt(session_id, client, version)

    async def find(self, session_id: str, client: str, seal: Seal) -> Session | None:
        """The client's live session of that id, marked used; None if not genuine, another's, or ended."""
        owner = _owner(seal, session_id)
        if owner is None or owner[0] != client:
            return None
        if self._shared is not None:
            touch = self._shared.touch(client, session_id, self._config.session_idle, True)
            if not await self._ask(touch, True):
                self._end(session_id)
                return None
        elif session_id in self._ended:
            return None
        session = self._by_id.get(session_id)
        if session is None:  # opened by another process, or forgotten here
            return self._adopt(session_id, client, owner[1])
        now = time.monotonic()
        if self._shared is None and now - session.used > self._config.session_idle:
            self._end(session_id)
            return None
        session.used = now
        self._by_id.move_to_end(session_id)
        self._by_client[client].move_to_end(session_id)
        return session

    async def alive(self, session: Session) -> bool:
        """Whether the session still stands (not ended, not expired), without marking it used."""
        if self._by_id.get(session.id) is not session:
            return False
        if self._shared is not None:
            touch = self._shared.touch(session.client, session.id, self._config.session_idle, False)
            live = await self._ask(touch, True)
        else:
            live = time.monotonic() - session.used <= self._config.session_idle
        if not live:
            self._end(session.id)
        return live

    async def close(self, session: Session) -> None:
        self._end(session.id)
        if self._shared is not None:
            await self._ask(self._shared.close(session.client, session.id), None)

    def upstream_changed(self, server: str, method: str) -> None:
        """An upstream server announced a list change: on to every stream whose client may see that server."""
        for session in self._by_id.values():
            if session.stream is not None and session.stream.sees(server):
                session.stream.push(method)

    def reloaded(self, changed: bool) -> None:
        """A reload: every stream ends (it holds the old config in use), first announcing that the lists
        changed when the MCP servers or the strategies' ``mcp`` did. Clients open their stream again."""
        for session in self._by_id.values():
            if session.stream is not None:
                for method in LIST_CHANGES if changed else ():
                    session.stream.push(method)
                session.stream.end()

    def end_streams(self) -> None:
        """The process is shutting down: every stream ends now, none opens any more."""
        self.closing = True
        for session in self._by_id.values():
            if session.stream is not None:
                session.stream.end()

    def __len__(self) -> int:
        return len(self._by_id)

    def streams(self) -> int:
        """How many GET streams are open on this process."""
        return sum(session.stream is not None for session in self._by_id.values())

    async def _ask(self, call: Awaitable[T], otherwise: T) -> T:
        try:
            return await call
        except SharedUnavailable as exc:
            if self._fail_closed:
                raise
            log.warning("mcp sessions: the shared store is unavailable (%s); this process decides alone", exc)
            return otherwise

    def _adopt(self, session_id: str, client: str, version: str) -> Session:
        while len(self._by_id) >= self._config.max_sessions:
            self._end(next(iter(self._by_id)))
        session = Session(session_id, client, version, time.monotonic())
        self._by_id[session_id] = session
        mine = self._by_client.setdefault(client, OrderedDict())
        mine[session_id] = None
        while self._shared is None and len(mine) > self._config.max_sessions_per_client:
            self._end(next(iter(mine)))
        return session

    def _end(self, session_id: str) -> None:
        session = self._by_id.pop(session_id, None)
        if session is None:
            return
        session.end()
        mine = self._by_client[session.client]
        del mine[session_id]
        if not mine:
            del self._by_client[session.client]
        if self._shared is None:  # the id stays genuine: only this memory keeps it from being adopted again
            self._ended[session_id] = None
            while len(self._ended) > self._config.max_sessions:
                self._ended.popitem(last=False)

    def _expire(self) -> None:
        cutoff = time.monotonic() - self._config.session_idle
        while self._by_id:
            oldest = next(iter(self._by_id.values()))
            if oldest.used > cutoff:
                return
            self._end(oldest.id)
