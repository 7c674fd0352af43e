"""``cache:`` (where the response cache keeps its entries) and each strategy's ``cache`` (whether its
requests are answered from it, and for how long an entry lasts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.config.reader import Reader

CACHE_BACKENDS = ("memory", "redis")


@dataclass(frozen=True)
class CacheConfig:
    backend: str = "memory"  # redis: shared by every process and replica, at ``state.redis_url``
    ttl: int = 3600  # seconds an entry lasts, for a strategy that says ``cache: true``
    max_bytes: int = 256 * 1024 * 1024  # the memory backend's bound, per process (least recently used go first)


def read_cache(r: Reader, raw: Any) -> CacheConfig:
    d = CacheConfig()
    m = r.mapping(raw, "cache", {"backend": False, "ttl": False, "max_bytes": False}) or {}
    backend = r.string(m["backend"], "cache.backend") if "backend" in m else d.backend
    if backend is not None and backend not in CACHE_BACKENDS:
        r.problem("cache.backend", f"expected one of {', '.join(CACHE_BACKENDS)}")
        backend = None
    ttl = r.number(m["ttl"], "cache.ttl", integer=True) if "ttl" in m else None
    size = r.number(m["max_bytes"], "cache.max_bytes", integer=True) if "max_bytes" in m else None
    return CacheConfig(backend or d.backend, ttl or d.ttl, size or d.max_bytes)


def read_strategy_cache(r: Reader, raw: Any, path: str, default_ttl: int) -> int | None:
    """A strategy's ``cache``: the seconds its entries last (``true``: the cache's ``ttl``; ``{ttl: N}``),
    or None (``false`` or absent: its requests never touch the cache)."""
    if raw is None or isinstance(raw, bool):
        return default_ttl if raw else None
    if not isinstance(raw, dict):
        r.problem(path, "expected true, false or {ttl: seconds}")
        return None
    m = r.mapping(raw, path, {"ttl": False}) or {}
    ttl = r.number(m["ttl"], f"{path}.ttl", integer=True) if "ttl" in m else None
    return ttl or default_ttl
