"""Rate limits: is this client within its strategy's budgets? Counts the request when admitting it.

Sits after auth (it needs the client) and before permissions, so every authenticated inference call
counts, even one that is then refused. The headers go on the answer whatever it turns out to be.
"""

from __future__ import annotations

from aiohttp import web

from gateway.keys import ENDPOINT_ATTR, LIVE, PRINCIPAL, RATE_HEADERS


async def admit(request: web.Request) -> None:
    """For an inference endpoint: count the request against its client's limits, or a 429."""
    principal = request.get(PRINCIPAL)
    if principal is None or not principal.policy.limits or getattr(request.match_info.handler, ENDPOINT_ATTR,
                                                                   None) is None:
        return
    request[RATE_HEADERS] = await request.app[LIVE].limiter.admit(principal.client.name, principal.policy.limits)
