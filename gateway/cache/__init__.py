"""The response cache: an answer kept, as its client got it, to answer the same request again without an
upstream call. ``request`` (which requests may be answered from it, and the key one is kept under),
``entry`` (what is kept: the answer's bytes, or a stream's events, with what accounting needs), and the
stores: ``memory_entries`` (one process, least recently used evicted by bytes) and ``redis_entries``
(every process and replica, expiring by TTL). middlewares.cached uses them for the strategies whose
``cache`` is on; a stream's relay records what it sends (gateway.api.events).
"""

from __future__ import annotations

from multidict import istr

from gateway.cache.entry import Entry, Recording
from gateway.cache.memory_entries import MemoryCache
from gateway.cache.request import CACHED_ENDPOINTS, Directives, cacheable, directives, fingerprint
from gateway.cache.store import ResponseCache
from gateway.config import CacheConfig, StateConfig

#: on every answer of a strategy with a cache: ``hit`` (from the cache) or ``miss``
HEADER = istr("x-localrouter-cache")

__all__ = [
    "CACHED_ENDPOINTS",
    "HEADER",
    "Directives",
    "Entry",
    "Recording",
    "ResponseCache",
    "cacheable",
    "directives",
    "fingerprint",
    "make_cache",
]


def make_cache(config: CacheConfig, state: StateConfig) -> ResponseCache:
    """The store ``cache.backend`` names (Redis, at ``state.redis_url``, imported only when configured)."""
    if config.backend == "redis":
        from gateway.cache.redis_entries import RedisCache

        return RedisCache(state.redis_url, state.key_prefix + ":cache:", state.timeout)
    return MemoryCache(config.max_bytes)
