"""``GET /health``: for load balancers (no authentication), and with ``detail=1`` for operators."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, response_schema

from gateway import __version__
from gateway.api import schemas
from gateway.api.answers import json_answer
from gateway.errors import InvalidRequest
from gateway.keys import LIVE, OBSERVER, RUNTIME, SHUTDOWN, STARTED_AT

_FLAGS = {"1": True, "true": True, "0": False, "false": False}


def status(request: web.Request) -> str:
    """draining, ok, or degraded (the rate limits' state, a provider's model discovery or the usage store
    failing)."""
    writer = request.app[OBSERVER].usage
    healthy = (
        request.app[LIVE].state.health()["ok"]
        and not request[RUNTIME].catalog.failures()
        and (writer is None or writer.health()["ok"])
    )
    return "draining" if request.app[SHUTDOWN].draining else "ok" if healthy else "degraded"


@docs(
    tags=["health"],
    summary="Health check (no authentication)",
    parameters=[
        {
            "in": "query",
            "name": "detail",
            "required": False,
            "schema": {"type": "string", "enum": list(_FLAGS)},
            "description": "`1`: also list provider names and targets that failed lately or cool down",
        }
    ],
)
@response_schema(schemas.HealthSchema, 200)
@response_schema(schemas.ErrorSchema, 400, description="An unknown value of `detail`")
@response_schema(schemas.HealthSchema, 503, description="Draining: shutting down, take it out of rotation")
async def health(request: web.Request) -> web.Response:
    runtime = request[RUNTIME]
    state = request.app[LIVE].state.health()
    # a provider that cannot say which models it has: its names and reasons, never its address or key
    unreachable = [{"provider": name, "error": error} for name, error in runtime.catalog.failures().items()]
    writer = request.app[OBSERVER].usage
    usage = writer.health() if writer is not None else None
    doc: dict[str, Any] = {
        "status": status(request),
        "version": __version__,
        "uptime_seconds": round(time.time() - request.app[STARTED_AT], 3),
        "providers": len(runtime.config.providers),
        "clients": len(runtime.clients),
        "state": state,
        "providers_unreachable": unreachable,
    }
    if usage is not None:
        doc["usage_store"] = usage
    detail = request.query.get("detail", "0")
    if detail not in _FLAGS:
        raise InvalidRequest("'detail' must be 1 or 0.", param="detail")
    if _FLAGS[detail]:
        doc["provider_names"] = [p.name for p in runtime.config.providers]
        doc["targets"] = request.app[LIVE].breakers.snapshot()  # those that failed lately; no secrets
        doc["pid"] = os.getpid()  # which worker answered
        if runtime.mcp is not None:  # each upstream MCP server's state; never its address or command
            doc["mcp_servers"] = [dataclasses.asdict(h) for h in runtime.mcp.health()]
    return json_answer(doc, status=503 if doc["status"] == "draining" else 200)
