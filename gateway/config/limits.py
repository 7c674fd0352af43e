"""The config of budgets: rate limits per strategy, prices per provider model, and the state backend."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.config.reader import Reader

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
LIMIT_KINDS = ("requests", "total_tokens", "input_tokens", "output_tokens", "cost_usd")
STATE_BACKENDS = ("memory", "redis")


@dataclass(frozen=True)
class RateLimit:
    kind: str  # one of LIMIT_KINDS
    amount: float
    per: str  # one of PERIODS

    @property
    def window(self) -> int:
        return PERIODS[self.per]

    @property
    def id(self) -> str:
        """Stable across reloads: a client keeps its budget while the same limit stays configured."""
        return f"{self.kind}/{self.per}"


@dataclass(frozen=True)
class Price:
    """USD per million tokens. Input tokens read from or written to a prompt cache cost the cache's
    prices where given, else the input price."""

    input_per_1m: float
    output_per_1m: float
    cache_read_per_1m: float | None = None
    cache_write_per_1m: float | None = None


@dataclass(frozen=True)
class StateConfig:
    backend: str = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    fail_closed: bool = False
    key_prefix: str = "localrouter"
    #: Redis connections per process; a request waits for a free one (waiting is not an outage)
    max_connections: int = 50
    #: seconds a request waits for a free connection before it is refused (503)
    pool_timeout: float = 5.0
    #: seconds to connect or to get a reply before Redis is judged unreachable; generous, because a busy
    #: process reads a reply late, and a reply read late must not pass for an outage
    timeout: float = 2.0


def read_rate_limits(r: Reader, raw: Any, path: str) -> tuple[RateLimit, ...]:
    out: list[RateLimit] = []
    seen: set[str] = set()
    for i, item in enumerate(r.sequence(raw, path)):
        p = f"{path}[{i}]"
        m = r.mapping(item, p, {**{k: False for k in LIMIT_KINDS}, "per": True})
        if m is None:
            continue
        kinds = [k for k in LIMIT_KINDS if k in m]
        if len(kinds) != 1:
            r.problem(p, f"exactly one of {', '.join(LIMIT_KINDS)} is required")
            continue
        kind = kinds[0]
        amount = r.number(m[kind], f"{p}.{kind}", integer=kind != "cost_usd")
        per = r.string(m.get("per"), f"{p}.per") if "per" in m else None
        if per is not None and per not in PERIODS:
            r.problem(f"{p}.per", f"expected one of {', '.join(PERIODS)}")
            per = None
        if amount is None or per is None:
            continue
        limit = RateLimit(kind, float(amount), per)
        if limit.id in seen:
            r.problem(p, f"a second {kind} limit per {per}")
            continue
        seen.add(limit.id)
        out.append(limit)
    return tuple(out)


def read_prices(r: Reader, raw: Any, path: str) -> Mapping[str, Price]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        r.problem(path, "expected a mapping of model name to {input_per_1m, output_per_1m}")
        return {}
    out = {}
    keys = {"input_per_1m": True, "output_per_1m": True, "cache_read_per_1m": False, "cache_write_per_1m": False}
    for model, spec in raw.items():
        p = f"{path}.{model}"
        m = r.mapping(spec, p, keys)
        if m is None or "input_per_1m" not in m or "output_per_1m" not in m:
            continue
        values = {k: r.number(m[k], f"{p}.{k}", minimum=0) for k in keys if k in m}
        if None not in values.values():
            out[str(model)] = Price(**{k: float(v) for k, v in values.items() if v is not None})
    return out


def read_state(r: Reader, raw: Any) -> StateConfig:
    d = StateConfig()
    m = (
        r.mapping(
            raw,
            "state",
            {
                "backend": False,
                "redis_url": False,
                "fail_closed": False,
                "key_prefix": False,
                "max_connections": False,
                "pool_timeout": False,
                "timeout": False,
            },
        )
        or {}
    )
    backend = r.string(m["backend"], "state.backend") if "backend" in m else d.backend
    if backend is not None and backend not in STATE_BACKENDS:
        r.problem("state.backend", f"expected one of {', '.join(STATE_BACKENDS)}")
        backend = None
    url = r.string(m["redis_url"], "state.redis_url") if "redis_url" in m else d.redis_url
    if url is not None and urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        r.problem("state.redis_url", "expected a redis://, rediss:// or unix:// URL")
        url = None
    fail_closed = r.boolean(m["fail_closed"], "state.fail_closed") if "fail_closed" in m else d.fail_closed
    prefix = r.name(m["key_prefix"], "state.key_prefix") if "key_prefix" in m else d.key_prefix
    pool = r.number(m["max_connections"], "state.max_connections", integer=True) if "max_connections" in m else None
    wait = r.number(m["pool_timeout"], "state.pool_timeout") if "pool_timeout" in m else None
    timeout = r.number(m["timeout"], "state.timeout") if "timeout" in m else None
    return StateConfig(
        backend or d.backend,
        url or d.redis_url,
        d.fail_closed if fail_closed is None else fail_closed,
        prefix or d.key_prefix,
        pool or d.max_connections,
        wait or d.pool_timeout,
        timeout or d.timeout,
    )
