"""``/admin/api/clients``: every client's use today and this month (from the usage records), each rate
limit's current use (from the limits' state: shared with Redis, else the answering process's own), and
suspending or resuming a client (gateway.auth.overrides: refused with 401 on every process)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, response_schema

from gateway.api.admin import records, schemas
from gateway.api.answers import AUTH, json_answer
from gateway.auth.overrides import OverridesUnavailable
from gateway.config import ClientConfig
from gateway.errors import Conflict, NotFound, StoreUnavailable
from gateway.keys import LIVE, PRINCIPAL, RUNTIME
from gateway.limits.limiter import key
from gateway.limits.windows import Check, StateUnavailable
from gateway.observability.usage import UsageStore

NAME = [{"in": "path", "name": "name", "required": True, "schema": {"type": "string"}}]


def _period(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"requests": 0, "total_tokens": 0, "cost_usd": None}
    return {"requests": row["requests"], "total_tokens": row["total_tokens"], "cost_usd": row["cost_usd"]}


def _starts(now: float) -> tuple[float, float]:
    """The start of today and of this month, in UTC (as ``localrouter usage --by day`` counts days)."""
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp(), day.replace(day=1).timestamp()


async def _limits(request: web.Request, client: ClientConfig) -> list[dict[str, Any]]:
    """Each rate limit's use now against its amount (read without counting anything)."""
    limits = request[RUNTIME].router.policies[client.strategy].limits
    checks = [Check(key(client.name, lim), lim.window, lim.amount) for lim in limits]
    try:
        readings = await request.app[LIVE].state.admit(checks) if checks else (True, [])
        used: list[float | None] = [r.used for r in readings[1]]
    except StateUnavailable:
        used = [None] * len(limits)
    return [
        {"name": f"{lim.kind}_per_{lim.per}", "used": u, "limit": lim.amount}
        for lim, u in zip(limits, used, strict=True)
    ]


@docs(
    tags=["admin"],
    summary="Every client: strategy, state, use today and this month, rate limits (never a secret)",
    security=AUTH,
    responses=schemas.errors(503),
)
@response_schema(schemas.AdminClientsSchema, 200)
async def clients(request: web.Request) -> web.Response:
    day, month = _starts(time.time())

    def query(store: UsageStore) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return store.summary(day, "client"), store.summary(month, "client")

    today, this_month = await records.read(request, query) or ([], [])
    by_day, by_month = {r["client"]: r for r in today}, {r["client"]: r for r in this_month}
    suspended = request.app[LIVE].overrides.suspended
    doc = [
        {
            "name": c.name,
            "strategy": c.strategy,
            "enabled": c.enabled,
            "admin": c.admin,
            "suspended": c.name in suspended,
            "today": _period(by_day.get(c.name)),
            "month": _period(by_month.get(c.name)),
            "limits": await _limits(request, c),
        }
        for c in request[RUNTIME].config.clients
    ]
    return json_answer({"clients": doc})


async def _suspend(request: web.Request, suspended: bool) -> web.Response:
    name = request.match_info["name"]
    if not any(c.name == name for c in request[RUNTIME].config.clients):
        raise NotFound(f"No client named {name[:100]!r}.", param="name")
    if suspended and name == request[PRINCIPAL].client.name:  # no admin left to resume it, maybe
        raise Conflict(
            "You cannot suspend your own client: you would lose the access needed to resume it. "
            "Ask another admin, or set enabled: false in the config.",
            param="name",
            code="cannot_suspend_self",
        )
    try:
        await request.app[LIVE].overrides.suspend(name, suspended)
    except OverridesUnavailable as exc:
        raise StoreUnavailable("The shared state cannot be reached now; nothing changed. Try again.") from exc
    records.audit(request, "suspend" if suspended else "resume", name, client=name)
    return json_answer({"name": name, "suspended": suspended})


@docs(
    tags=["admin"],
    summary="Suspend a client: refused with 401 (client_suspended) on every process until resumed",
    security=AUTH,
    parameters=NAME,
    responses=schemas.errors(404, 409, 503),
)
@response_schema(schemas.AdminSuspensionSchema, 200)
async def suspend(request: web.Request) -> web.Response:
    return await _suspend(request, True)


@docs(
    tags=["admin"],
    summary="Resume a suspended client",
    security=AUTH,
    parameters=NAME,
    responses=schemas.errors(404, 503),
)
@response_schema(schemas.AdminSuspensionSchema, 200)
async def resume(request: web.Request) -> web.Response:
    return await _suspend(request, False)
