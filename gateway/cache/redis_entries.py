"""The response cache in Redis: every gateway process and replica answers from the same entries, each
expiring by its TTL (Redis's own). When Redis cannot be reached, the cache is skipped (every request a
miss, nothing kept) for ``backoff`` seconds after each failure, instead of every request waiting on a
dead connection; the gateway keeps serving from its upstreams."""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.cache.entry import Entry
from gateway.cache.store import ResponseCache

log = logging.getLogger("localrouter.cache")


class RedisCache(ResponseCache):
    backend = "redis"

    def __init__(self, url: str, prefix: str, timeout: float = 2.0, backoff: float = 1.0) -> None:
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
        )
        self._prefix = prefix
        self._backoff = backoff
        self._down_until = 0.0

    async def get(self, key: str) -> Entry | None:
        if time.monotonic() < self._down_until:
            return None
        try:
            data = await self._redis.get(self._prefix + key)
        except (RedisError, OSError) as exc:
            self._failed("read", exc)
            return None
        if not isinstance(data, bytes):  # none there (the client is made to answer bytes)
            return None
        try:
            return Entry.decode(data)
        except ValueError:
            log.warning("response cache: a malformed entry in Redis was ignored")
            return None

    async def put(self, key: str, entry: Entry, ttl: int) -> None:
        if time.monotonic() < self._down_until:
            return
        try:
            await self._redis.set(self._prefix + key, entry.encode(), ex=ttl)
        except (RedisError, OSError) as exc:
            self._failed("write", exc)

    def _failed(self, what: str, exc: Exception) -> None:
        if time.monotonic() >= self._down_until + self._backoff:  # once per outage, not once per request
            log.warning("response cache: Redis %s failed (%s); skipping the cache for %ss", what, exc, self._backoff)
        self._down_until = time.monotonic() + self._backoff

    async def close(self) -> None:
        await self._redis.aclose()
