"""The outermost layer: find the request's Route (once, for every layer), give the request an id (and, traced, its
span), time it, and account for it once it is answered (metrics, access log line, usage record), whatever the answer
was."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.keys import BODY, EXCHANGE, OBSERVER, PRINCIPAL, ROUTE, ROUTE_TABLE
from gateway.observability import exchange as ex
from middlewares.errors import CLIENT_CLOSED


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    observer = request.app[OBSERVER]
    route = request[ROUTE] = request.app[ROUTE_TABLE][request.match_info.route]
    x = request[EXCHANGE] = ex.start(request, observer.trusted, route.endpoint, route.inference, observer.ids)
    if observer.tracing is not None:
        observer.tracing.begin(request, x, ex.is_trusted(request, observer.trusted))
    try:
        response = await handler(request)  # its X-Request-ID header is set as it is sent (security)
        x.status = x.status or response.status  # an MCP call's is its outcome's (gateway.api.mcp)
        return response
    except asyncio.CancelledError:  # the client went away and aiohttp cancelled the handler
        x.status = CLIENT_CLOSED
        raise
    finally:
        principal = request.get(PRINCIPAL)
        if principal is not None:
            x.client = principal.client.name
        body = request.get(BODY)
        if body is not None:
            model = body.get("model")
            x.model_requested = model if isinstance(model, str) else None
            x.stream = x.stream or body.get("stream") is True  # a refused request too, as it was asked
            if observer.bodies and x.request_body is None:  # else the firewall's copy, its secrets redacted
                x.request_body = body
        observer.finish(x)
