"""Everything known about one request, filled in as it goes, and read once it is over: by the access
log, the metrics and the usage records (gateway.observability.observer)."""

from __future__ import annotations

import ipaddress
import itertools
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiohttp import hdrs, web

if TYPE_CHECKING:  # types only: routing records into an exchange, not the other way round
    from opentelemetry.trace import Span

    from gateway.routing.router import Target
    from providers.base import Provider

T = TypeVar("T")


class Tracing(Protocol):
    """What is asked of the tracing through an exchange (gateway.observability.tracing, which reads
    exchanges): spans for its upstream attempts and its MCP calls, and the request's span ended."""

    def end(self, x: Exchange) -> None:
        """End the request's span, with what the exchange says of the request."""

    def attempts(self, x: Exchange, call: Callable[[Provider, Target], Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        """``call`` with a child span of the request's around each upstream attempt."""

    def mcp_call(self, x: Exchange, method: str, server: str | None, item: str) -> Span:
        """A child span of the request's for one MCP call to an upstream item."""


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(slots=True)
class Exchange:
    id: str
    started: float  # perf_counter
    wall: float  # time.time()
    method: str
    path: str
    endpoint: str  # the route's label (gateway.api.routes), bounded: chat, completions, ..., other
    inference: bool  # the route is an inference endpoint: its time, tokens and cost are measured
    remote: str
    client: str | None = None
    model_requested: str | None = None
    target: Target | None = None
    attempts: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (target id, provider, kind)
    upstream_seconds: float = 0.0
    stream: bool = False
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None
    ttfb: float | None = None  # seconds to the first byte of a stream
    status: int = 0
    error_code: str | None = None
    cache: str | None = None  # the response cache's verdict, ``hit`` or ``miss``; None: a strategy without one
    saved_usd: float | None = None  # a cache hit: what the answer cost when it was first served
    duration: float = 0.0  # seconds, set once when the answer is done (gateway.observability.observer)
    mcp: tuple[str | None, str, str] | None = None  # an MCP call's (server, item, status), bounded; None: none reached
    request_body: Any = None  # only kept when logging.bodies is on
    response_body: Any = None
    tracing: Tracing | None = None  # set with ``span`` when tracing is on: the attempts' spans come from it
    span: Span | None = None  # the request's trace span

    def since_start(self) -> float:
        return time.perf_counter() - self.started


def _in(address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


def client_address(request: web.Request, trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> str:
    """The peer, or, when the peer is a trusted proxy, the nearest untrusted address it forwards for."""
    peer = request.remote or ""
    if not trusted or not _in(peer, trusted):
        return peer
    hops = [h.strip() for h in request.headers.get(hdrs.X_FORWARDED_FOR, "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop
    return hops[0] if hops else peer


class Ids:
    """Request ids, unique, not secret (a client can only read its own records): a random prefix per
    process and a counter cost far less than a uuid4 per request. One per app (the observer's)."""

    __slots__ = ("_prefix", "_counter")

    def __init__(self) -> None:
        self._prefix = "req_" + uuid.uuid4().hex[:12]
        self._counter = itertools.count(1)

    def new(self) -> str:
        return f"{self._prefix}{next(self._counter):010x}"


def request_id(request: web.Request, trusted_peer: bool, ids: Ids) -> str:
    if trusted_peer:
        given = request.headers.get(hdrs.X_REQUEST_ID)
        if given and _REQUEST_ID.match(given):
            return given
    return ids.new()


def is_trusted(request: web.Request, trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    """The peer is a trusted proxy: its X-Request-ID, X-Forwarded-For and traceparent are believed."""
    return bool(trusted) and _in(request.remote or "", trusted)


def start(
    request: web.Request,
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
    endpoint: str,
    inference: bool,
    ids: Ids,
) -> Exchange:
    """A new request's exchange. Without trusted proxies (the common case) the peer is the client."""
    peer = request.remote or ""
    peer_trusted = is_trusted(request, trusted)
    remote = client_address(request, trusted) if trusted else peer
    return Exchange(
        request_id(request, peer_trusted, ids),
        time.perf_counter(),
        time.time(),
        request.method,
        request.path,
        endpoint,
        inference,
        remote,
    )
