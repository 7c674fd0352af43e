"""``GET /admin/api/overview``: the deployment at a glance. Requests, errors and their series come from
the usage records (every worker's and replica's, in the shared store), and so do the percentiles (nearest
rank over the records in the range: exact, unlike the metrics' histogram buckets); streams in flight, the
response cache's hit ratio and size and the firewall's decisions are the metrics summed over every worker,
as ``/metrics`` sums them (gateway.api.admin.counters)."""

from __future__ import annotations

import math
import time
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, response_schema

from gateway import __version__
from gateway.api import health
from gateway.api.admin import counters, params, records, schemas
from gateway.api.answers import AUTH, json_answer
from gateway.keys import OBSERVER, RUNTIME, STARTED_AT
from gateway.observability.usage import UsageStore

#: range -> (its length, the width of a bucket of its series), in seconds
RANGES = {"1h": (3600, 60), "24h": (86400, 900)}
DAY = 86400


def _percentiles(found: dict[str | None, tuple[float, float]]) -> dict[str, float | None]:
    p50, p95 = found.get(None, (None, None))
    return {"p50": p50, "p95": p95}


def _series(since: float, step: int, count: int, rows: list[tuple[float, int, int]]) -> list[dict[str, Any]]:
    """Every bucket, zero-filled."""
    found = {round((t - since) / step): (n, failed) for t, n, failed in rows}
    return [
        {"t": since + i * step, "requests": found.get(i, (0, 0))[0], "errors": found.get(i, (0, 0))[1]}
        for i in range(count)
    ]


def today(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The totals of summary rows; cost: the priced requests' sum, null when none of them was priced."""
    costs = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
    totals = {k: sum(r[k] for r in rows) for k in ("requests", "prompt_tokens", "completion_tokens", "total_tokens")}
    return {**totals, "cost_usd": sum(costs) if costs or not totals["requests"] else None}  # none made: $0


async def _metered(request: web.Request) -> dict[str, Any]:
    """What the metrics say, over every worker and replica (each null when metrics are off)."""
    deployment = await request.app[OBSERVER].deployment()
    if deployment is None:
        return {"streams_in_flight": None, "workers": 1, "cache": None, "firewall": None}
    values, workers = deployment
    return {
        "streams_in_flight": counters.streams(values),
        "workers": workers,
        "cache": counters.cache(values, request[RUNTIME].config),
        "firewall": counters.firewall(values),
    }


@docs(
    tags=["admin"],
    summary="Status, requests and errors over the last hour or day, latency percentiles, today's usage",
    security=AUTH,
    parameters=[
        {"in": "query", "name": "range", "required": False, "schema": {"type": "string", "enum": list(RANGES)}}
    ],
    responses=schemas.errors(400, 503),
)
@response_schema(schemas.AdminOverviewSchema, 200)
async def overview(request: web.Request) -> web.Response:
    span = params.choice(request, "range", RANGES, "1h") or "1h"
    length, step = RANGES[span]
    now = time.time()
    count = length // step
    since = (math.floor(now / step) - count + 1) * step  # the last bucket holds now
    midnight = now - now % DAY

    def query(store: UsageStore) -> tuple[Any, ...]:
        return (
            store.series(since, math.inf, step),
            store.percentiles(since, math.inf, "duration_ms"),
            store.percentiles(since, math.inf, "ttfb_ms"),
            store.summary(midnight, "client"),
        )

    series, duration, ttfb, usage_today = await records.read(request, query) or ([], {}, {}, [])
    buckets = _series(since, step, count, series)
    n, failed = sum(b["requests"] for b in buckets), sum(b["errors"] for b in buckets)
    doc = {
        "status": health.status(request),
        "version": __version__,
        "uptime_s": round(now - request.app[STARTED_AT], 3),
        "range": span,
        "series": buckets,
        "requests": n,
        "errors": failed,
        "error_rate": failed / n if n else 0.0,
        "duration_ms": _percentiles(duration),
        "ttfb_ms": _percentiles(ttfb),
        "today": today(usage_today),
        "records": records.enabled(request),
        **(await _metered(request)),
    }
    return json_answer(doc)
