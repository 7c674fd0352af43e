"""``GET /metrics``: Prometheus's text format, behind ``metrics.token`` when one is set."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp_apigami import docs

from gateway.errors import AuthenticationFailed, NotFound
from gateway.keys import OBSERVER, RUNTIME

if TYPE_CHECKING:  # the SDK is loaded only with mcp_servers
    from gateway.mcp.hub import Hub


@docs(
    tags=["observability"],
    summary="Prometheus metrics (bearer `metrics.token` when configured)",
    responses={
        200: {"description": "The Prometheus text format"},
        401: {"description": "Wrong or no token"},
        404: {"description": "Metrics are turned off"},
    },
)
async def metrics(request: web.Request) -> web.Response:
    observer = request.app[OBSERVER]
    if observer.metrics is None:
        raise NotFound("Metrics are turned off (metrics.enabled).")
    runtime = request[RUNTIME]
    token = runtime.config.metrics.token
    if token is not None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise AuthenticationFailed("/metrics needs 'Authorization: Bearer <metrics.token>'.")
    return web.Response(
        body=observer.metrics.render(_servers_up(runtime.mcp)),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def _servers_up(hub: Hub | None) -> dict[str, bool] | None:
    """Each MCP server of this runtime, up or not (never started yet, connecting, down: not up)."""
    return None if hub is None else {h.name: h.state == "up" for h in hub.health()}
