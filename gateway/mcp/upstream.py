"""One upstream MCP server: its session, owned by one supervisor task, used by callers from any task.

The SDK's transports and its ``ClientSession`` are anyio context managers: each must be entered and
left in one task. So a supervisor task per server owns them: it starts the server's process (stdio)
or connects (Streamable HTTP), initializes, offers the session, and closes it when it ends. Callers
send their requests on that session from their own tasks (the SDK's dispatcher matches answers to
requests by id), so a caller's cancellation and the SDK's own timeout reach the upstream as
``notifications/cancelled``, and progress for a request comes back to that caller's callback.

The session starts on first use. When it ends (the process exited, the connection broke) the calls
still waiting get an error at once, and the next call starts it again, no sooner than a backoff that
grows with each failure in a row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
import mcp.types as types
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from pydantic import BaseModel, ValidationError

from gateway import __version__
from gateway.config import McpServerConfig

log = logging.getLogger("localrouter.mcp")

R = TypeVar("R", bound=BaseModel)
#: ``async (progress, total, message) -> None``, the SDK's progress callback
Progress = ProgressFnT
#: ``(server, method) -> None``: told of a server's ``notifications/*/list_changed``
Changed = Callable[[str, str], None]
_LIST_CHANGED = (
    types.ToolListChangedNotification,
    types.PromptListChangedNotification,
    types.ResourceListChangedNotification,
)

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
#: characters of a failure's reason kept for /health (an upstream's own error message may be long)
REASON_MAX = 300
#: how long an HTTP server may hold a response stream silent, unless a call may take longer
SSE_READ_TIMEOUT = 300.0
CLIENT_INFO = types.Implementation(name="localrouter-gateway", version=__version__)


class McpUpstreamError(Exception):
    """A request the upstream side did not answer with a result: the upstream's own JSON-RPC error, passed
    on, or the gateway's (``CONNECTION_CLOSED``: the server is down or died; ``REQUEST_TIMEOUT``: past
    ``timeouts.call``, cancelled upstream; ``INVALID_PARAMS``: no such tool, prompt or resource).
    ``reason``: the failure underneath, without the words wrapped around it for the caller (for /health).
    ``kind``: set when the gateway refused the call itself, reaching no server: ``refused`` (by the client's
    strategy) or ``unknown`` (no such item)."""

    def __init__(
        self, code: int, message: str, data: Any = None, reason: str | None = None, kind: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.reason = reason or message
        self.kind = kind

    def error_data(self) -> types.ErrorData:
        """The ``error`` member of a JSON-RPC error answer."""
        return types.ErrorData(code=self.code, message=self.message, data=self.data)


@dataclass(frozen=True)
class UpstreamHealth:
    """For ``/health?detail=1``: never an address, a command line or a header."""

    name: str
    transport: str  # stdio, http
    state: str  # idle (never used yet), connecting, up, down, closed
    last_error: str | None = None


class _WatchedDispatcher(JSONRPCDispatcher):
    """The SDK's JSON-RPC dispatcher, which also says when its receive loop has ended (the process exited,
    the stream closed), so the supervisor drops that session rather than offer a dead one."""

    def __init__(self, streams: tuple[Any, Any], ended: asyncio.Event) -> None:
        super().__init__(*streams)
        self._ended = ended

    async def run(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().run(*args, **kwargs)
        finally:
            self._ended.set()


class _Attempt:
    """One start of the session, awaited by every caller that wants it meanwhile."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.session: ClientSession | None = None
        self.error: McpUpstreamError | None = None

    def settle(self, session: ClientSession | None, error: McpUpstreamError | None = None) -> None:
        self.session, self.error = session, error
        self.done.set()


class Upstream:
    """One configured server. :meth:`request` from any task; :meth:`close` once, at the end."""

    def __init__(self, config: McpServerConfig, changed: Changed | None = None) -> None:
        self.config = config
        self.name = config.name
        self._changed = changed
        self._state = "idle"
        self._last_error: str | None = None
        self._session: ClientSession | None = None
        self._attempt = _Attempt()
        self._wanted = asyncio.Event()  # a caller waits for a session: the supervisor starts one
        self._end = asyncio.Event()  # the current session is over (lost, dropped, or closing)
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures = 0  # starts failed or sessions lost in a row
        self._retry_at = 0.0  # loop time of the next start allowed
        self._suspect = False  # HTTP: the server refused the session; ping before the next use
        self._dropped: str | None = None  # why a caller dropped the current session

    def health(self) -> UpstreamHealth:
        return UpstreamHealth(self.name, self.config.transport, self._state, self._last_error)

    def note(self, error: McpUpstreamError) -> None:
        """Record a failure the caller saw (a list that timed out) for :meth:`health`: its reason, never the
        message around it (which names the last error already: kept, it would nest a little more each time)."""
        self._failed(error.reason)

    def _failed(self, reason: str) -> None:
        self._last_error = reason if len(reason) <= REASON_MAX else reason[: REASON_MAX - 3] + "..."

    async def request(
        self,
        request: types.Request[Any, Any],
        result_type: type[R],
        *,
        timeout: float | None = None,
        progress: Progress | None = None,
    ) -> R:
        """Send ``request`` (an SDK request model) and validate its answer as ``result_type``; raise
        :class:`McpUpstreamError`. ``timeout``: seconds, default ``timeouts.call``; past it the request is
        cancelled upstream. ``progress``: called with the upstream's progress notifications."""
        timeout = self.config.timeouts.call if timeout is None else timeout
        session = await self._live_session()
        try:
            return await session.send_request(
                request, result_type, request_read_timeout_seconds=timeout, progress_callback=progress
            )
        except MCPError as exc:
            error = self._translate(exc, request.method, timeout)
            if exc.code == types.CONNECTION_CLOSED:
                self._drop(session, error.message)
            raise error from exc
        except ValidationError as exc:
            message = f"upstream MCP server {self.name!r} sent an invalid answer to {request.method}"
            raise McpUpstreamError(types.INTERNAL_ERROR, message) from exc

    def _translate(self, exc: MCPError, method: str, timeout: float) -> McpUpstreamError:
        if exc.code == types.REQUEST_TIMEOUT:
            message = f"upstream MCP server {self.name!r} did not answer {method} within {timeout:g}s (cancelled)"
            return McpUpstreamError(types.REQUEST_TIMEOUT, message)
        if exc.code == types.CONNECTION_CLOSED:
            message = f"upstream MCP server {self.name!r} closed the connection during {method}"
            return McpUpstreamError(types.CONNECTION_CLOSED, message)
        if exc.code == types.INVALID_REQUEST and self.config.url is not None:
            # what the SDK answers when the server forgot the session (it restarted): verified before the next use
            self._suspect = True
        return McpUpstreamError(exc.code, exc.message, exc.data)

    async def _live_session(self) -> ClientSession:
        session = self._session
        if session is not None and self._suspect:
            await self._verify(session)
            session = self._session
        if session is not None:
            return session
        if self._closing.is_set():
            raise self._closed_error()
        wait = max(0.0, self._retry_at - asyncio.get_running_loop().time())
        connect = self.config.timeouts.connect
        if wait > connect:
            message = f"upstream MCP server {self.name!r} is down ({self._last_error}); next start in {wait:.0f}s"
            raise McpUpstreamError(types.CONNECTION_CLOSED, message, reason=self._last_error)
        attempt = self._attempt
        self._want()
        try:
            await asyncio.wait_for(attempt.done.wait(), wait + connect)
        except TimeoutError:
            message = f"upstream MCP server {self.name!r} did not start within {connect:g}s"
            raise McpUpstreamError(types.CONNECTION_CLOSED, message) from None
        if attempt.session is None:
            assert attempt.error is not None
            error = attempt.error  # one exception for every waiter: each gets its own copy to raise
            raise McpUpstreamError(error.code, error.message, error.data, error.reason)
        return attempt.session

    async def _verify(self, session: ClientSession) -> None:
        """Ping a session the server may have forgotten; drop it if the ping fails too."""
        self._suspect = False
        try:
            await session.send_ping()
        except MCPError as exc:
            self._drop(session, f"the session is gone ({exc.message})")

    def _drop(self, session: ClientSession, reason: str) -> None:
        """Stop offering ``session`` now, not once the supervisor has noticed: the next call waits for a new one."""
        if session is self._session:
            self._session, self._state, self._dropped = None, "down", reason
            self._failed(reason)
            self._end.set()

    def _want(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._supervise(), name=f"mcp-{self.name}")
        self._wanted.set()

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing.is_set():
            await self._wanted.wait()
            self._wanted.clear()
            await self._pause(self._retry_at - loop.time())
            if self._closing.is_set():
                break
            reason = await self._run_session()
            if self._closing.is_set():
                break
            self._failures += 1
            self._retry_at = loop.time() + min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._failures - 1))
            self._state = "down"
            self._failed(reason)
        self._state = "closed"
        self._attempt.settle(None, self._closed_error())

    def _closed_error(self) -> McpUpstreamError:
        return McpUpstreamError(types.CONNECTION_CLOSED, f"upstream MCP server {self.name!r} is closed")

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            try:
                await asyncio.wait_for(self._closing.wait(), seconds)
            except TimeoutError:
                pass

    async def _run_session(self) -> str:
        """Start a session and offer it until it ends; why it ended, or why it never began."""
        attempt, ended = self._attempt, asyncio.Event()
        self._end, self._state, self._dropped = ended, "connecting", None
        if self._closing.is_set():
            ended.set()
        try:
            async with self._transport() as streams, self._client(streams, ended) as session:
                await session.initialize()
                self._session, self._state, self._failures = session, "up", 0
                self._attempt = _Attempt()  # the next wait is for the next session
                attempt.settle(session)
                log.info("mcp server %s: up (%s)", self.name, self.config.transport)
                await ended.wait()
            reason = "closed" if self._closing.is_set() else self._dropped or "the session ended"
        except Exception as exc:  # whatever ends a session (the SDK, its transports, the process) ends only that one
            reason = _describe(exc)
            log.warning("mcp server %s: %s", self.name, reason, exc_info=not _expected(exc))
        finally:
            self._session = None
        if not self._closing.is_set() and attempt.session is not None:
            log.warning("mcp server %s: down: %s", self.name, reason)
        if not attempt.done.is_set():
            self._attempt = _Attempt()
            message = f"upstream MCP server {self.name!r} cannot start: {reason}"
            attempt.settle(None, McpUpstreamError(types.CONNECTION_CLOSED, message, reason=reason))
        return reason

    def _client(self, streams: tuple[Any, Any], ended: asyncio.Event) -> ClientSession:
        # the default read timeout bounds initialize (and the ping of _verify); calls pass their own
        dispatcher = _WatchedDispatcher(streams, ended)
        return ClientSession(
            dispatcher=dispatcher,
            read_timeout_seconds=self.config.timeouts.connect,
            client_info=CLIENT_INFO,
            message_handler=self._noticed,
        )

    async def _noticed(self, message: IncomingMessage) -> None:
        """A notification not tied to a request (a transport's fault comes here too: the supervisor sees it)."""
        if isinstance(message, _LIST_CHANGED) and self._changed is not None:
            self._changed(self.name, message.method)

    def _transport(self) -> AbstractAsyncContextManager[tuple[Any, Any]]:
        command = self.config.command
        if command is None:
            return self._http()
        env = {k: v.reveal() for k, v in self.config.env.items()}
        return stdio_client(StdioServerParameters(command=command[0], args=list(command[1:]), env=env or None))

    @asynccontextmanager
    async def _http(self) -> AsyncIterator[tuple[Any, Any]]:
        assert self.config.url is not None
        t = self.config.timeouts
        timeout = httpx2.Timeout(t.connect, read=max(t.call, SSE_READ_TIMEOUT))
        headers = {k: v.reveal() for k, v in self.config.headers.items()}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=timeout) as client,
            streamable_http_client(self.config.url, http_client=client) as streams,
        ):
            yield streams

    async def close(self) -> None:
        """End the session (the calls still on it get an error) and stop the supervisor."""
        self._closing.set()
        self._end.set()
        self._wanted.set()
        if self._task is not None:
            await self._task
        self._state = "closed"


def _expected(exc: BaseException) -> bool:
    """The failures of a server, not of the gateway: one log line, no traceback."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_expected(e) for e in exc.exceptions)
    return isinstance(exc, (OSError, MCPError, httpx2.HTTPError, ValidationError))


def _describe(exc: BaseException) -> str:
    """A short reason, without addresses, command lines or headers (they may hold secrets)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, OSError):
        return f"cannot start the process: {exc.strerror or type(exc).__name__}"
    if isinstance(exc, MCPError):
        return f"initialize failed: {exc.message}"
    if isinstance(exc, httpx2.TransportError):
        return f"cannot reach the server ({type(exc).__name__})"
    if isinstance(exc, httpx2.HTTPError):
        return f"HTTP error ({type(exc).__name__})"
    return type(exc).__name__
