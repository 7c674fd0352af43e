"""``/admin/api/providers``: every provider and target as the answering process sees it (model
discovery, breakers: each process keeps its own), with each target's median duration over the last hour
from the usage records (every process's), and the pools with the requests each target answered (the
metrics summed over every worker); resetting a target's cooldown, on every process
(gateway.auth.overrides)."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, response_schema

from gateway.api.admin import counters, records, schemas
from gateway.api.answers import AUTH, json_answer, string_parameter
from gateway.auth.overrides import OverridesUnavailable
from gateway.config import Config, PoolConfig
from gateway.errors import NotFound, StoreUnavailable
from gateway.keys import LIVE, OBSERVER, RUNTIME
from gateway.observability.usage import UsageStore
from gateway.routing.breaker import Breakers
from gateway.routing.router import Target

LATENCY_WINDOW = 3600.0
_LAST_ERROR = 300  # characters of a target's last error shown


def _breaker(breakers: Breakers, target: str) -> dict[str, Any]:
    state, seconds = breakers.state(target)
    return {"state": state, "open_until": round(time.time() + seconds, 3) if seconds is not None else None}


def _target(
    request: web.Request, target: str, known: tuple[bool | None, float | None], p50: float | None
) -> dict[str, Any]:
    breakers = request.app[LIVE].breakers
    last = breakers.last_error(target)
    return {
        "id": target,
        "reachable": known[0],
        "discovered_at": known[1],
        "breaker": _breaker(breakers, target),
        "last_error": last[:_LAST_ERROR] if last else None,
        "latency_ms": {"p50": p50},
    }


async def _pools(request: web.Request, pools: tuple[PoolConfig, ...]) -> list[dict[str, Any]]:
    """Each pool's balance and targets, with the requests each answered (null when metrics are off) and
    its breaker (a target cooling down is skipped)."""
    deployment = await request.app[OBSERVER].deployment() if pools else None
    served = counters.pool_requests(deployment[0]) if deployment is not None else None
    breakers = request.app[LIVE].breakers
    return [
        {
            "name": pool.name,
            "id": pool.id,
            "balance": pool.balance,
            "targets": [
                {
                    "id": t,
                    "weight": pool.weights.get(t, 1) if pool.balance == "weighted" else None,
                    "requests": served.get((pool.name, t), 0) if served is not None else None,
                    "breaker": _breaker(breakers, t),
                }
                for t in pool.targets
            ],
        }
        for pool in pools
    ]


def named(config: Config, provider: str) -> set[str]:
    """The models of ``provider`` the config names as targets (strategies' auto, fallbacks and aliases,
    pools): shown, and their cooldown resettable, even when its discovery failed and found none."""
    ids: set[str] = {t for pool in config.pools for t in pool.targets}
    for s in config.strategies:
        ids.update(s.auto, s.aliases.values(), s.fallbacks, *s.fallbacks.values())
    found = set()
    for target in ids - {pool.id for pool in config.pools}:
        owner, _, model = target.partition("/")
        if owner == provider and model:
            found.add(model)
    return found


@docs(
    tags=["admin"],
    summary="Every provider and target: reachable, breaker state, last error, median latency; MCP servers; pools",
    description="A provider's targets: the models it has (configured or discovered) and those the config "
    "names (auto, fallbacks, aliases, pools). With the usage store down, still 200: latencies null, "
    "`store_error` says why.",
    security=AUTH,
    responses=schemas.errors(),
)
@response_schema(schemas.AdminProvidersSchema, 200)
async def providers(request: web.Request) -> web.Response:
    runtime = request[RUNTIME]

    def query(store: UsageStore) -> dict[str | None, tuple[float, float]]:
        return store.percentiles(time.time() - LATENCY_WINDOW, math.inf, "duration_ms", by="model", upstream=True)

    latency, store_error = await records.read_or_note(request, query)  # a reset needs no records
    failures = runtime.catalog.failures()
    doc = []
    for p in runtime.config.providers:
        models, reachable, discovered = runtime.catalog.known(p.name)
        targets = [
            _target(request, f"{p.name}/{m}", (reachable, discovered), (latency or {}).get(f"{p.name}/{m}", (None,))[0])
            for m in sorted(set(models) | named(runtime.config, p.name))
        ]
        error = failures.get(p.name)
        doc.append(
            {
                "name": p.name,
                "type": p.type,
                "reachable": reachable,
                "discovered_at": discovered,
                "error": error[:_LAST_ERROR] if error else None,
                "targets": targets,
            }
        )
    mcp = [dataclasses.asdict(h) for h in runtime.mcp.health()] if runtime.mcp is not None else []
    pools = await _pools(request, runtime.config.pools)
    return json_answer(
        {
            "providers": doc,
            "mcp_servers": mcp,
            "pools": pools,
            "records": records.enabled(request),
            "store_error": store_error,
        }
    )


@docs(
    tags=["admin"],
    summary="End a target's cooldown (its breaker closes, its failures are forgotten) on every process",
    security=AUTH,
    parameters=[string_parameter("path", "target", "`provider/model`")],
    responses=schemas.errors(404, 503),
)
@response_schema(schemas.AdminResetSchema, 200)
async def reset(request: web.Request) -> web.Response:
    runtime = request[RUNTIME]
    target = Target.parse(request.match_info["target"])
    if target is None or target.provider not in runtime.providers:
        raise NotFound(f"No target {request.match_info['target'][:100]!r}.", param="target")
    models, _, _ = runtime.catalog.known(target.provider)
    known = target.model in models or target.model in named(runtime.config, target.provider)
    if not known and request.app[LIVE].breakers.state(target.id)[0] == "closed":
        raise NotFound(f"No target {target.id[:100]!r}.", param="target")
    try:
        await request.app[LIVE].overrides.reset(target.id)
    except OverridesUnavailable as exc:
        raise StoreUnavailable("The shared state cannot be reached now; nothing changed. Try again.") from exc
    records.audit(request, "reset_cooldown", target.id)
    return json_answer({"target": target.id, "breaker": _breaker(request.app[LIVE].breakers, target.id)})
