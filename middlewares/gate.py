"""The checks a request passes before its handler, in order: pin the runtime (first: every later step,
the handler included, reads that one, so a reload never changes the rules under a request in flight) ->
security (host, CORS preflight) -> auth (who) -> rate limit (how much) -> body (the JSON object, read
once) -> permissions (which model) -> firewall (rules and secrets, for the strategies it looks at); the
last four only for the inference endpoints, and then, for a strategy with a response cache, the cache
(middlewares.cached), which alone wraps the handler: after the firewall, so a cached answer is never a way
round it. An admin endpoint asks for an admin client right after auth. The request's Route (found once by
``observe``) says which endpoints those are and which need no secret.

Rate limiting comes before the body is read, so a request counts against its client's budget even when
its body is then refused.

Each check is a plain function in its own module that either stores what it found on the request or
raises the error answer; none of them wraps the handler, so one middleware runs them all. Four
middleware layers would cost four coroutine frames per request for nothing a layer is needed for: only
``observe`` and ``errors``, which act on what comes back, are middlewares of their own.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.keys import LIVE, PRINCIPAL, ROUTE, RUNTIME
from middlewares import auth, body, cached, firewall, permissions, rate_limit, security


@web.middleware
async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    runtime = request[RUNTIME] = request.app[LIVE].current
    preflight = security.screen(request)
    if preflight is not None:
        return preflight
    auth.identify(request)
    route = request[ROUTE]
    if route.admin:
        auth.require_admin(request)
    runtime.started()  # its connection pools stay open until the request is over
    try:
        if route.inference:
            await rate_limit.admit(request)
            await body.read(request)
            await permissions.resolve(request)
            policy = request[PRINCIPAL].policy
            if policy.screened:
                await firewall.screen(request)
            ttl = policy.cache_ttl
            if ttl is not None:  # the response cache wraps the handler for its strategies alone
                return await cached.serve(request, handler, ttl)
        return await handler(request)
    finally:
        runtime.finished()
