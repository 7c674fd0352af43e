"""Every replica's metrics, for the admin API. With ``state.backend: redis`` each process (each worker of
each replica) publishes a snapshot of its numbers (:meth:`Metrics.snapshot`) to Redis every
``SNAPSHOT_INTERVAL`` seconds, under a key of its own that expires after ``TTL`` seconds: a replica that
died drops out of the sum within that, one that stopped cleanly at once (it deletes its key). The admin
API sums the live snapshots, this process's own numbers taken at that moment.

``/metrics`` does not read them: Prometheus scrapes each replica and sums the replicas itself; a replica's
``/metrics`` answers for its own workers only (gateway.observability.metrics)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING

import orjson

from gateway.config.limits import StateConfig
from gateway.observability.metrics import SNAPSHOT_INTERVAL, Metrics, Values, add_snapshot

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger("localrouter.metrics")

TTL = 5  # seconds a snapshot outlives its process: a few missed publications are no death


class ReplicasUnavailable(Exception):
    """Redis cannot be reached: the snapshots cannot be read now."""


class Replicas:
    """This process's snapshots in Redis, and the sum of every live process's."""

    def __init__(self, state: StateConfig, metrics: Metrics) -> None:
        import redis.asyncio as aioredis  # only when configured, like the rate limits' state

        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            state.redis_url, max_connections=2, socket_timeout=state.timeout, socket_connect_timeout=state.timeout
        )
        self._metrics = metrics
        self._id = uuid.uuid4().hex
        self._index = f"{state.key_prefix}:metrics:processes"  # every process's id (a key of its own expires)
        self._prefix = f"{state.key_prefix}:metrics:process:"
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._publish_forever())

    async def close(self) -> None:
        from redis.exceptions import RedisError

        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):  # gone anyway within TTL
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.delete(self._prefix + self._id)
                pipe.zrem(self._index, self._id)
                await pipe.execute()
        await self._redis.aclose()

    async def publish(self) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._prefix + self._id, self._metrics.snapshot(), ex=TTL)
            pipe.zadd(self._index, {self._id: time.time()})
            await pipe.execute()

    async def _publish_forever(self) -> None:
        from redis.exceptions import RedisError

        while True:
            try:
                await self.publish()
            except (RedisError, OSError) as exc:
                if not self._failing:
                    # the class only: a message could name the server (never its password, but keep to one rule)
                    log.warning(
                        "metrics snapshot not published to Redis (the admin API misses it): %s", type(exc).__name__
                    )
                self._failing = True
            else:
                self._failing = False
            await asyncio.sleep(SNAPSHOT_INTERVAL)

    async def deployment(self) -> tuple[Values, int]:
        """Every live process's numbers summed (this one's live), and how many processes that is."""
        from redis.exceptions import RedisError

        try:
            ids = [i.decode() for i in await self._redis.zrange(self._index, 0, -1) if isinstance(i, bytes)]
            others = [i for i in ids if i != self._id]
            docs = await self._redis.mget([self._prefix + i for i in others]) if others else []
            gone = [i for i, doc in zip(others, docs, strict=True) if doc is None]
            if gone:  # expired: their process died
                await self._redis.zrem(self._index, *gone)
        except (RedisError, OSError) as exc:
            raise ReplicasUnavailable(f"redis: {type(exc).__name__}") from exc
        total, processes = self._metrics.copy(), 1
        for doc in docs:
            if doc is not None:
                with contextlib.suppress(orjson.JSONDecodeError):
                    add_snapshot(total, orjson.loads(doc))
                    processes += 1
        return total, processes
