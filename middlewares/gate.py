"""The checks a request passes before its handler, in order: security (host, CORS preflight) -> auth
(who) -> rate limit (how much) -> permissions (which model); the last two only for the inference
endpoints.

Each check is a plain function in its own module that either stores what it found on the request or
raises the error answer; none of them wraps the handler, so one middleware runs them all. Four
middleware layers would cost four coroutine frames per request for nothing a layer is needed for: only
``observe`` and ``errors``, which act on what comes back, are middlewares of their own.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.keys import ENDPOINT_ATTR, RUNTIME
from middlewares import auth, permissions, rate_limit, security


@web.middleware
async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    preflight = security.screen(request)
    if preflight is not None:
        return preflight
    auth.identify(request)
    runtime = request[RUNTIME]
    runtime.started()  # its connection pools stay open until the request is over
    try:
        if getattr(request.match_info.handler, ENDPOINT_ATTR, None) is not None:  # an inference endpoint
            await rate_limit.admit(request)
            await permissions.resolve(request)
        return await handler(request)
    finally:
        runtime.finished()
