"""Rate limits: is this client within its strategy's budgets? Counts the request when admitting it.

Sits after auth (it needs the client) and before permissions, so every authenticated inference call
counts, even one that is then refused. The headers go on the answer whatever it turns out to be.
"""

from __future__ import annotations

from aiohttp import web

from gateway.keys import LIVE, PRINCIPAL, RATE_HEADERS


async def admit(request: web.Request) -> None:
    """An inference request: count it against its client's limits, or a 429."""
    principal = request.get(PRINCIPAL)
    if principal is None or not principal.policy.limits:
        return
    request[RATE_HEADERS] = await request.app[LIVE].limiter.admit(principal.client.name, principal.policy.limits)
