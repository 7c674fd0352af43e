"""Browser-facing safety: the Host check (against DNS rebinding), CORS, and headers on every answer.

The settings come from the live config, so a reload changes them for the next request.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from gateway import cache
from gateway.errors import InvalidRequest
from gateway.keys import EXCHANGE, LIVE, RATE_HEADERS, RUNTIME, SHUTDOWN

_ALLOW_METHODS = "GET, POST, OPTIONS"
_ALLOW_HEADERS = (
    "Authorization, Content-Type, OpenAI-Organization, OpenAI-Project, X-Request-ID, X-Stainless-*, "
    "x-api-key, anthropic-version, anthropic-beta"
)
_EXPOSE_HEADERS = "Retry-After, X-Request-ID"
_PREFLIGHT_MAX_AGE = "600"


def _host_allowed(request: web.Request, allowed: tuple[str, ...]) -> bool:
    host = (request.host or "").lower()
    if host.startswith("["):  # [::1]:3625
        host = host[: host.find("]") + 1]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host in allowed


def _allowed_origin(request: web.Request, origins: tuple[str, ...]) -> str | None:
    origin = request.headers.get("Origin")
    if not origin or not origins:
        return None
    if "*" in origins:
        return "*"
    return origin if origin.rstrip("/") in origins else None


def screen(request: web.Request) -> web.Response | None:
    """Refuse a host not allowed; answer a CORS preflight (the response), else None."""
    server = request[RUNTIME].config.server
    if server.allowed_hosts and not _host_allowed(request, server.allowed_hosts):
        raise InvalidRequest("This gateway does not answer for the host named in the request.", code="host_not_allowed")
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        origin = _allowed_origin(request, server.cors_origins)
        if origin is not None:
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": _ALLOW_METHODS,
                    "Access-Control-Allow-Headers": request.headers.get(
                        "Access-Control-Request-Headers", _ALLOW_HEADERS
                    ),
                    "Access-Control-Max-Age": _PREFLIGHT_MAX_AGE,
                    "Vary": "Origin",
                },
            )
    return None


async def response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer, errors and streams included, right before its headers go out.
    (aiohttp's ``hdrs`` names are already case-folded: the header dict takes them as they are.)"""
    headers = response.headers
    headers[hdrs.X_CONTENT_TYPE_OPTIONS] = "nosniff"
    x = request.get(EXCHANGE)
    if x is not None:
        headers[hdrs.X_REQUEST_ID] = x.id
        if x.cache is not None:  # a strategy with a response cache: hit or miss (middlewares.cached)
            headers[cache.HEADER] = x.cache
    rate = request.get(RATE_HEADERS)
    if rate:
        headers.update(rate)
    headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
    if request.app[SHUTDOWN].draining:
        # Connection: close, and closed after this answer: clients and proxies open their next connection
        # elsewhere, instead of sending on a kept-alive one just as it is closed (a reset, and a POST that
        # nginx cannot retry)
        headers[hdrs.CONNECTION] = "close"
        response.force_close()
    if hdrs.ORIGIN in request.headers and LIVE in request.app:
        origin = _allowed_origin(request, request.app[LIVE].current.config.server.cors_origins)
        if origin is not None:
            headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = _EXPOSE_HEADERS
            headers[hdrs.VARY] = "Origin"
