"""What happens to an exchange once it is over: metrics, the access log line, the usage record."""

from __future__ import annotations

import ipaddress
import logging

from gateway.config import Config
from gateway.observability.accesslog import AccessLog, line
from gateway.observability.exchange import Exchange, Ids
from gateway.observability.metrics import USAGE_DROPPED, Metrics, Values
from gateway.observability.replicas import Replicas, ReplicasUnavailable
from gateway.observability.stores import usage_writer
from gateway.observability.tracing import Tracing
from gateway.observability.usage import UsageRecord

log = logging.getLogger("localrouter.observe")


class Observer:
    def __init__(self, config: Config, access_out=None) -> None:  # type: ignore[no-untyped-def]
        self.config = config
        self.trusted = tuple(ipaddress.ip_network(n, strict=False) for n in config.server.trusted_proxies)
        self.ids = Ids()  # every request's id, and those refused before the app (gateway.connection)
        self.metrics = Metrics(config.metrics.snapshot_dir) if config.metrics.enabled else None
        self.access = AccessLog(access_out) if config.logging.access else None
        self.bodies = config.logging.bodies
        self.usage = usage_writer(config.usage)
        if self.usage is not None and self.metrics is not None:
            self.usage.dropped_cell = self.metrics.cell(USAGE_DROPPED)
        self.tracing: Tracing | None = None  # created as the app starts: its exporter runs a thread
        self.replicas: Replicas | None = None  # every replica's metrics, with Redis: created as the app starts

    def start(self) -> None:
        if self.config.tracing.enabled:
            self.tracing = Tracing(self.config.tracing)
        if self.metrics is not None:
            self.metrics.start()
            if self.config.state.backend == "redis":
                self.replicas = Replicas(self.config.state, self.metrics)
                self.replicas.start()
        if self.access is not None:
            self.access.start()
        if self.usage is not None:
            self.usage.start()

    def finish(self, x: Exchange) -> None:
        x.duration = x.since_start()  # once, for every sink
        try:
            if x.tracing is not None:
                x.tracing.end(x)
            if self.metrics is not None:
                self.metrics.observe(x)
                if x.mcp is not None:
                    self.metrics.observe_mcp(x.client or "none", x.mcp, x.duration)
            if self.access is not None:
                self.access.write(line(x, self.bodies))
            if self.usage is not None and (x.inference or x.mcp is not None) and x.client is not None:
                self.usage.add(record_of(x))
        except Exception:  # the answer is already out: an accounting bug must not become a 500
            log.exception("could not account for request %s", x.id)

    async def deployment(self) -> tuple[Values, int] | None:
        """The metrics of the whole deployment and how many processes it has: every replica's through
        Redis when configured, else every worker's of this one (gateway.observability.metrics); None when
        metrics are off."""
        if self.metrics is None:
            return None
        if self.replicas is not None:
            try:
                return await self.replicas.deployment()
            except ReplicasUnavailable as exc:
                log.warning("other replicas' metrics not read, this one's alone shown: %s", exc)
        return self.metrics.deployment()

    async def close(self) -> None:
        if self.replicas is not None:
            await self.replicas.close()
        if self.metrics is not None:
            await self.metrics.close()
        if self.access is not None:
            await self.access.close()
        if self.usage is not None:
            await self.usage.close()
        if self.tracing is not None:
            await self.tracing.close()


def _int(usage: dict | None, key: str) -> int:
    value = (usage or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def record_of(x: Exchange) -> UsageRecord:
    prompt, completion = _int(x.usage, "prompt_tokens"), _int(x.usage, "completion_tokens")
    total = _int(x.usage, "total_tokens") or prompt + completion
    return UsageRecord(
        x.id,
        x.wall,
        x.client or "",
        x.endpoint,
        x.model_requested,
        x.target.id if x.target else None,
        x.target.provider if x.target else x.mcp[0] if x.mcp else None,  # an MCP call's: its server
        x.stream,
        x.status,
        prompt,
        completion,
        total,
        x.cost_usd if total else 0.0,  # nothing used costs nothing; used without a price: unknown (None)
        round(x.duration * 1000, 3),
        round(x.ttfb * 1000, 3) if x.ttfb is not None else None,
        x.attempts,
        x.error_code,
        x.cache == "hit",
        x.saved_usd,
    )
