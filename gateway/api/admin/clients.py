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


def _period(rows: dict[str, dict[str, Any]] | None, name: str) -> dict[str, Any] | None:
    """A client's use over a period from its summary rows; None when they could not be read (records off,
    or the store down): unknown, not zero."""
    if rows is None:
        return None
    row = rows.get(name)
    if row is None:  # nothing used costs nothing
        return {"requests": 0, "total_tokens": 0, "cost_usd": 0.0}
    return {"requests": row["requests"], "total_tokens": row["total_tokens"], "cost_usd": row["cost_usd"]}


def _by_client(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["client"]: r for r in rows}


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
    description="With the usage store down, still 200: `today` and `month` null, `store_error` says why.",
    security=AUTH,
    responses=schemas.errors(),
)
@response_schema(schemas.AdminClientsSchema, 200)
async def clients(request: web.Request) -> web.Response:
    day, month = _starts(time.time())

    def query(store: UsageStore) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return store.summary(day, "client"), store.summary(month, "client")

    found, store_error = await records.read_or_note(request, query)  # suspending needs no records
    by_day, by_month = (_by_client(found[0]), _by_client(found[1])) if found is not None else (None, None)
    suspended = request.app[LIVE].overrides.suspended
    doc = [
        {
            "name": c.name,
            "strategy": c.strategy,
            "enabled": c.enabled,
            "admin": c.admin,
            "suspended": c.name in suspended,
            "today": _period(by_day, c.name),
            "month": _period(by_month, c.name),
            "limits": await _limits(request, c),
        }
        for c in request[RUNTIME].config.clients
    ]
    return json_answer({"clients": doc, "records": records.enabled(request), "store_error": store_error})


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
