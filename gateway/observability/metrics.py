"""Prometheus metrics. Label values stay bounded: clients and models come from the config (a model label
is a configured or discovered ``provider/model`` the request resolved to, else ``none``), endpoints and
failure kinds from fixed sets.

A request only adds to plain Python numbers: one dict lookup finds the cells its kind of request
updates, then each update is a list addition (prometheus-client's own metric objects take a lock and
scan their buckets per update, several times the cost). prometheus-client turns the numbers into its
text format when ``/metrics`` is scraped, through a collector.

Under ``serve --workers`` (``LOCALROUTER_METRICS_DIR`` set by the supervisor) each worker writes a
snapshot of its numbers to that directory every second and when it stops; a scrape answers the sum of
every worker's latest snapshot, its own taken at that moment. Counters of a worker that died stay in
the sum (they happened); its gauge (streams in flight) does not. Replicas are summed for the admin API
only, through Redis (gateway.observability.replicas): Prometheus scrapes each replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from gateway.observability.exchange import Exchange

log = logging.getLogger("localrouter.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
SNAPSHOT_INTERVAL = 1.0  # seconds between a worker's snapshots
NOT_CALLED = ("cooling_down", "over_budget")  # failure kinds of targets skipped without an upstream call

Cell = list[float]  # a counter or gauge: [value]; a histogram: [count per bucket..., count above all, sum]
Values = dict[str, dict[tuple[str, ...], Cell]]


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    kind: str  # counter, gauge or histogram
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    def new_cell(self) -> Cell:
        return [0.0] * (len(self.buckets) + 2) if self.kind == "histogram" else [0.0]


REQUESTS = Family(
    "localrouter_requests", "counter", "Requests answered", ("endpoint", "status", "client", "model", "provider")
)
DURATION = Family(
    "localrouter_request_duration_seconds",
    "histogram",
    "Time to the end of the answer",
    ("endpoint", "stream"),
    LATENCY_BUCKETS,
)
TTFB = Family(
    "localrouter_time_to_first_byte_seconds",
    "histogram",
    "Streams: time to the first event",
    ("endpoint",),
    LATENCY_BUCKETS,
)
OVERHEAD = Family(
    "localrouter_overhead_seconds",
    "histogram",
    "Non-stream answers: total time minus the time spent waiting on upstreams",
    ("endpoint",),
    OVERHEAD_BUCKETS,
)
TOKENS = Family("localrouter_tokens", "counter", "Tokens used", ("client", "model", "provider", "direction"))
COST = Family(
    "localrouter_cost_usd", "counter", "Cost of the answers whose model has a price", ("client", "model", "provider")
)
FALLBACKS = Family(
    "localrouter_fallbacks", "counter", "Targets given up on within a request, and why", ("target", "reason")
)
UPSTREAM_ERRORS = Family("localrouter_upstream_errors", "counter", "Failed upstream attempts", ("provider", "kind"))
STREAM_ERRORS = Family(
    "localrouter_stream_errors",
    "counter",
    "Streams that failed after their 200 went out (counted in localrouter_requests as 200 too), "
    "by the code of the error event that ended them",
    ("endpoint", "client", "model", "provider", "code"),
)
RATE_LIMITED = Family("localrouter_rate_limited", "counter", "Requests refused by a client rate limit", ("client",))
STREAMS = Family("localrouter_streams_in_flight", "gauge", "Streams being relayed now")
USAGE_DROPPED = Family(
    "localrouter_usage_records_dropped", "counter", "Usage records dropped: more waiting than the buffer holds"
)
MCP_CALLS = Family(
    "localrouter_mcp_calls",
    "counter",
    "MCP tools/call, prompts/get and resources/read answered; item: the tool's or prompt's name when its "
    "server answered it with a result, else other",
    ("client", "server", "item", "status"),
)
POOL_REQUESTS = Family(
    "localrouter_pool_requests",
    "counter",
    "Requests a pool's target answered (pools and targets: the config's)",
    ("pool", "target"),
)
MCP_DURATION = Family(
    "localrouter_mcp_call_duration_seconds", "histogram", "MCP calls: time to the answer", ("server",), LATENCY_BUCKETS
)
CACHE_LOOKUPS = Family(
    "localrouter_cache_lookups",
    "counter",
    "Requests of strategies with a response cache, by result: hit (answered from it) or miss (from an upstream; "
    "Cache-Control no-cache and no-store, and what cannot be cached, included)",
    ("result",),
)
CACHE_BYTES = Family("localrouter_cache_bytes", "gauge", "Bytes the memory response cache holds (every worker's)")
FIREWALL = Family(
    "localrouter_firewall_decisions",
    "counter",
    "Firewall decisions: allow, deny, granted, an admin's (allow_once, allow_for, allow_always, deny), timeout, "
    "abandoned, unavailable, secrets_block, secrets_redact, secrets_log",
    ("client", "action"),
)
#: a gauge read from the hub at scrape time, not kept in :attr:`Metrics.values` (nor in workers' snapshots)
MCP_UP = "localrouter_mcp_servers_up"
FAMILIES = (
    REQUESTS,
    DURATION,
    TTFB,
    OVERHEAD,
    TOKENS,
    COST,
    FALLBACKS,
    UPSTREAM_ERRORS,
    STREAM_ERRORS,
    RATE_LIMITED,
    STREAMS,
    USAGE_DROPPED,
    MCP_CALLS,
    MCP_DURATION,
    POOL_REQUESTS,
    CACHE_LOOKUPS,
    CACHE_BYTES,
    FIREWALL,
)
_BY_NAME = {f.name: f for f in FAMILIES}


def observe_into(cell: Cell, buckets: tuple[float, ...], value: float) -> None:
    """A histogram observation: ``le`` bounds are inclusive, as Prometheus defines them."""
    cell[bisect_left(buckets, value)] += 1
    cell[-1] += value


class Metrics:
    def __init__(self, snapshot_dir: str | None = None) -> None:
        self.values: Values = {f.name: {} for f in FAMILIES}
        self._bundles: dict[tuple[Any, ...], tuple[Cell, ...]] = {}  # bounded like the labels
        self.streams = self.cell(STREAMS)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)  # a collector: see collect()
        self._dir = Path(snapshot_dir) if snapshot_dir else None
        self._task: asyncio.Task[None] | None = None

    def cell(self, family: Family, *labels: str) -> Cell:
        series = self.values[family.name]
        cell = series.get(labels)
        if cell is None:
            cell = series[labels] = family.new_cell()
        return cell

    def _bundle(self, x: Exchange) -> tuple[Cell, ...]:
        """The cells one kind of request updates, looked up once per kind (one dict lookup per request).
        (The endpoint label says whether the request is an inference one: the key need not.)"""
        key = (x.endpoint, x.status, x.client, x.target, x.stream)
        bundle = self._bundles.get(key)
        if bundle is None:
            client = x.client or "none"
            model = x.target.id if x.target else "none"
            provider = x.target.provider if x.target else "none"
            requests = self.cell(REQUESTS, x.endpoint, str(x.status), client, model, provider)
            if not x.inference:
                bundle = (requests,)
            else:
                bundle = (
                    requests,
                    self.cell(DURATION, x.endpoint, "true" if x.stream else "false"),
                    self.cell(TTFB, x.endpoint),
                    self.cell(OVERHEAD, x.endpoint),
                    self.cell(TOKENS, client, model, provider, "input"),
                    self.cell(TOKENS, client, model, provider, "output"),
                    self.cell(COST, client, model, provider),
                )
            self._bundles[key] = bundle
        return bundle

    def observe(self, x: Exchange) -> None:
        bundle = self._bundle(x)
        bundle[0][0] += 1
        if len(bundle) == 1:  # not an inference endpoint
            return
        _, duration, ttfb, overhead, tokens_in, tokens_out, cost = bundle
        elapsed = x.duration
        observe_into(duration, LATENCY_BUCKETS, elapsed)
        if x.stream and x.ttfb is not None:
            observe_into(ttfb, LATENCY_BUCKETS, x.ttfb)
        elif not x.stream and x.target is not None:
            observe_into(overhead, OVERHEAD_BUCKETS, max(0.0, elapsed - x.upstream_seconds))
        served = x.target
        if served is not None and served.member is not None:
            self.cell(POOL_REQUESTS, served.member.pool, served.id)[0] += 1
        for target, provider, kind in x.failures:
            self.cell(FALLBACKS, target, kind)[0] += 1
            if kind not in NOT_CALLED:
                self.cell(UPSTREAM_ERRORS, provider, kind)[0] += 1
        usage = x.usage
        if usage:
            value = usage.get("prompt_tokens")
            if type(value) is int and value > 0:
                tokens_in[0] += value
            value = usage.get("completion_tokens")
            if type(value) is int and value > 0:
                tokens_out[0] += value
        if x.cost_usd:
            cost[0] += x.cost_usd
        if x.stream and x.error_code and x.status < 400:  # codes: stream_interrupted, internal_error
            self.cell(
                STREAM_ERRORS,
                x.endpoint,
                x.client or "none",
                x.target.id if x.target else "none",
                x.target.provider if x.target else "none",
                x.error_code,
            )[0] += 1
        if x.status == 429 and x.error_code == "rate_limit_exceeded":
            self.cell(RATE_LIMITED, x.client or "none")[0] += 1

    def observe_mcp(self, client: str, labels: tuple[str | None, str, str], elapsed: float) -> None:
        """One MCP call: ``labels`` are its (server, item, status), bounded by the endpoint (server None:
        refused before reaching one, labelled ``none``)."""
        server = labels[0] or "none"
        self.cell(MCP_CALLS, client, server, *labels[1:])[0] += 1
        observe_into(self.cell(MCP_DURATION, server), LATENCY_BUCKETS, elapsed)

    def firewall(self, client: str, action: str) -> None:
        """One firewall decision (``action`` from a fixed set, ``client`` a configured one)."""
        self.cell(FIREWALL, client, action)[0] += 1

    # -- exposition -------------------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """prometheus-client's collector interface: this process's numbers, or all workers' summed."""
        yield from families(self.deployment()[0])

    def render(self, servers_up: Mapping[str, bool] | None = None) -> bytes:
        """The text format; ``servers_up``: each MCP server of the current runtime, up or not (asked for at
        scrape time, so a request pays nothing for it; under several workers, the scraped worker's view)."""
        text = generate_latest(self.registry)
        if servers_up is None:
            return text
        gauge = GaugeMetricFamily(MCP_UP, "MCP servers: 1 when the session is up, else 0", labels=("server",))
        for server, up in servers_up.items():
            gauge.add_metric((server,), 1.0 if up else 0.0)
        return text + generate_latest(_Fixed(gauge))

    # -- several workers ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self._dir is not None:
            self._task = asyncio.get_running_loop().create_task(self._snapshots())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._write_snapshot()

    async def _snapshots(self) -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_INTERVAL)
            try:
                self._write_snapshot()
            except OSError as exc:
                log.warning("metrics snapshot not written: %s", exc)

    def snapshot(self) -> bytes:
        """This process's numbers as JSON (what :func:`add_snapshot` reads back)."""
        values = {
            name: [[list(labels), cell] for labels, cell in series.items()] for name, series in self.values.items()
        }
        return orjson.dumps({"pid": os.getpid(), "values": values})

    def _write_snapshot(self) -> None:
        assert self._dir is not None
        data = self.snapshot()
        path = self._dir / f"worker-{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # a reader sees the previous snapshot or this one, never half of one

    def deployment(self) -> tuple[Values, int]:
        """Every worker's numbers summed, as a scrape answers them, and how many workers are alive (this
        one included); one process: its own numbers."""
        if self._dir is None:
            return self.values, 1
        return self._summed()

    def _summed(self) -> tuple[Values, int]:
        assert self._dir is not None
        workers = 1
        total = self.copy()
        for path in self._dir.glob("worker-*.json"):
            try:
                doc = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue  # a worker gone with its directory, or a file from something else
            pid = doc.get("pid")
            if pid == os.getpid():
                continue  # this worker's numbers are the live ones above
            alive = _alive(pid)
            workers += alive
            add_snapshot(total, doc, gauges=alive)
        return total, workers

    def copy(self) -> Values:
        """This process's numbers, copied (a sum starts from them)."""
        return {name: {labels: list(cell) for labels, cell in series.items()} for name, series in self.values.items()}


def add_snapshot(total: Values, doc: Any, gauges: bool = True) -> None:
    """Add a snapshot (:meth:`Metrics.snapshot`, parsed) to ``total``; its gauges only if ``gauges`` (a
    dead process's streams are not in flight, though its counters happened)."""
    values = doc.get("values") if isinstance(doc, dict) else None
    for name, rows in (values or {}).items():
        family = _BY_NAME.get(name)
        if family is None or (family.kind == "gauge" and not gauges):
            continue
        series = total[name]
        for labels, cell in rows:
            mine = series.setdefault(tuple(labels), family.new_cell())
            if len(cell) == len(mine):
                for i, v in enumerate(cell):
                    mine[i] += v


class _Fixed:
    """A registry stand-in for ``generate_latest``: metrics built for one scrape."""

    def __init__(self, *metrics: Metric) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def families(values: Values) -> Iterator[Metric]:
    for f in FAMILIES:
        series = values.get(f.name, {})
        if f.kind == "counter":
            counter = CounterMetricFamily(f.name, f.help, labels=f.labels)
            for labels, cell in series.items():
                counter.add_metric(labels, cell[0])
            yield counter
        elif f.kind == "gauge":
            gauge = GaugeMetricFamily(f.name, f.help, labels=f.labels)
            for labels, cell in series.items():
                gauge.add_metric(labels, cell[0])
            yield gauge
        else:
            histogram = HistogramMetricFamily(f.name, f.help, labels=f.labels)
            bounds = [*map(floatToGoString, f.buckets), "+Inf"]
            for labels, cell in series.items():
                cumulative, running = [], 0.0
                for bound, count in zip(bounds, cell, strict=False):  # the cell's last two: above all, and the sum
                    running += count
                    cumulative.append((bound, running))
                histogram.add_metric(labels, cumulative, cell[-1])
            yield histogram
