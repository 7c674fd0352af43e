"""Prometheus metrics (prometheus-client), one registry per app. Label values stay bounded: clients and
models come from the config (a model label is a configured or discovered ``provider/model`` the request
resolved to, else ``none``), endpoints and failure kinds from fixed sets."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from gateway.exchange import Exchange

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
INFERENCE = frozenset({"chat", "completions", "embeddings"})


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("localrouter_requests", "Requests answered", ["endpoint", "status", "client", "model",
                                                                             "provider"], registry=r)
        self.duration = Histogram("localrouter_request_duration_seconds", "Time to the end of the answer",
                                  ["endpoint", "stream"], buckets=LATENCY_BUCKETS, registry=r)
        self.ttfb = Histogram("localrouter_time_to_first_byte_seconds", "Streams: time to the first event",
                              ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.overhead = Histogram("localrouter_overhead_seconds",
                                  "Non-stream answers: total time minus the time spent waiting on upstreams",
                                  ["endpoint"], buckets=OVERHEAD_BUCKETS, registry=r)
        self.tokens = Counter("localrouter_tokens", "Tokens used", ["client", "model", "provider", "direction"],
                              registry=r)
        self.cost = Counter("localrouter_cost_usd", "Cost of the answers whose model has a price",
                            ["client", "model", "provider"], registry=r)
        self.fallbacks = Counter("localrouter_fallbacks", "Targets given up on within a request, and why",
                                 ["target", "reason"], registry=r)
        self.upstream_errors = Counter("localrouter_upstream_errors", "Failed upstream attempts",
                                       ["provider", "kind"], registry=r)
        self.rate_limited = Counter("localrouter_rate_limited", "Requests refused by a client rate limit",
                                    ["client"], registry=r)
        self.streams = Gauge("localrouter_streams_in_flight", "Streams being relayed now", registry=r,
                             multiprocess_mode="livesum")
        self._children: dict[tuple[Any, ...], Any] = {}  # labels() is slow: each child is looked up once
        # (bounded like the labels: endpoints x statuses x clients x targets)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _bundle(self, x: Exchange) -> tuple[Any, ...]:
        """The children one kind of request updates, looked up once per kind (one dict lookup per request)."""
        key = (x.endpoint, x.status, x.client, x.target, x.stream)
        bundle = self._children.get(key)
        if bundle is None:
            client = x.client or "none"
            model = x.target.id if x.target else "none"
            provider = x.target.provider if x.target else "none"
            requests = self.requests.labels(x.endpoint, str(x.status), client, model, provider)
            if x.endpoint not in INFERENCE:
                bundle = self._children[key] = (requests, None, None, None, None, None, None)
                return bundle
            bundle = self._children[key] = (
                requests, self.duration.labels(x.endpoint, "true" if x.stream else "false"),
                self.ttfb.labels(x.endpoint), self.overhead.labels(x.endpoint),
                self.tokens.labels(client, model, provider, "input"), self.tokens.labels(client, model, provider,
                                                                                        "output"),
                self.cost.labels(client, model, provider))
        return bundle

    def observe(self, x: Exchange) -> None:
        requests, duration, ttfb, overhead, tokens_in, tokens_out, cost = self._bundle(x)
        requests.inc()
        if x.endpoint not in INFERENCE:
            return
        elapsed = x.duration
        duration.observe(elapsed)
        if x.stream and x.ttfb is not None:
            ttfb.observe(x.ttfb)
        elif not x.stream and x.target is not None:
            overhead.observe(max(0.0, elapsed - x.upstream_seconds))
        for target, prov, kind in x.failures:
            self._child(self.fallbacks, target, kind).inc()
            if kind != "cooling_down":
                self._child(self.upstream_errors, prov, kind).inc()
        if x.usage:
            for child, key in ((tokens_in, "prompt_tokens"), (tokens_out, "completion_tokens")):
                value = x.usage.get(key)
                if isinstance(value, int) and value > 0:
                    child.inc(value)
        if x.cost_usd:
            cost.inc(x.cost_usd)
        if x.status == 429 and x.error_code == "rate_limit_exceeded":
            self._child(self.rate_limited, x.client or "none").inc()

    def render(self) -> bytes:
        """This process's metrics; under ``serve --workers`` (PROMETHEUS_MULTIPROC_DIR), all workers' summed."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
