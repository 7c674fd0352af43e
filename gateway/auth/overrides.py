"""What an operator changes at run time without a config edit: clients suspended (refused with 401 until
resumed), targets whose cooldown was reset, and operator page sessions logged out (their cookie refused
until it would have expired). Every process must act on them, so they are shared:

- ``state.backend: redis``: in Redis, beside the rate limits (a set of suspended clients, a hash of
  target -> the id of its last reset, a sorted set of logged-out session ids scored by their expiry),
  which every process and replica reads every ``POLL`` seconds;
- ``serve --workers N`` without Redis: in a small file in the directory the workers share their metrics
  through, read every ``POLL`` seconds when it changed (its stat, no read otherwise);
- one process without Redis: in memory.

A request only looks a name up in :attr:`Overrides.suspended`, a frozenset: polling in the background
costs one Redis round trip (or one ``stat``) per process every ``POLL`` seconds however busy the gateway
is, where a read per request would cost one per request. The process that takes the action applies it
at once; the others within ``POLL`` seconds. A suspension lasts until it is resumed (or, without Redis,
until the gateway stops).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import fcntl
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from gateway.config import ClientConfig, Config
from gateway.errors import AuthenticationFailed
from gateway.routing.breaker import Breakers

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger("localrouter.overrides")

POLL = 0.5  # seconds between two reads of the shared overrides
FILE = "operator-overrides.json"


class OverridesUnavailable(Exception):
    """The shared overrides cannot be read or written now (Redis unreachable, the file unwritable)."""


@dataclass
class Shared:
    """What every process must agree on: the clients suspended, each reset target's last reset id, and the
    session ids logged out (each with its cookie's expiry: after it, the cookie is refused anyway)."""

    suspended: set[str] = field(default_factory=set)
    resets: dict[str, str] = field(default_factory=dict)
    revoked: dict[str, float] = field(default_factory=dict)


class Store(abc.ABC):
    @abc.abstractmethod
    async def read(self) -> Shared | None:
        """The shared overrides; None when they did not change since the last read."""

    @abc.abstractmethod
    async def suspend(self, client: str, suspended: bool) -> None: ...

    @abc.abstractmethod
    async def reset(self, target: str, reset_id: str) -> None: ...

    @abc.abstractmethod
    async def revoke(self, session_id: str, until: float) -> None: ...

    async def close(self) -> None:
        return None


class RedisStore(Store):
    def __init__(self, url: str, prefix: str, timeout: float) -> None:
        import redis.asyncio as aioredis  # only when configured, like the rate limits' state

        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url, max_connections=4, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._suspended, self._resets = f"{prefix}:admin:suspended", f"{prefix}:admin:resets"
        self._revoked = f"{prefix}:admin:revoked-sessions"

    async def _run(self, call: Callable[[], Awaitable[Any]]) -> Any:
        from redis.exceptions import RedisError

        try:
            return await call()
        except (RedisError, OSError) as exc:
            raise OverridesUnavailable(f"redis: {type(exc).__name__}") from exc

    async def read(self) -> Shared | None:
        async def everything() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.smembers(self._suspended)
                pipe.hgetall(self._resets)
                pipe.zrangebyscore(self._revoked, time.time(), "+inf", withscores=True)
                return await pipe.execute()

        members, resets, revoked = await self._run(everything)
        return Shared(
            {m.decode() for m in members},
            {k.decode(): v.decode() for k, v in resets.items()},
            {sid.decode(): until for sid, until in revoked},
        )

    async def suspend(self, client: str, suspended: bool) -> None:
        change = self._redis.sadd if suspended else self._redis.srem
        await self._run(lambda: change(self._suspended, client))

    async def reset(self, target: str, reset_id: str) -> None:
        await self._run(lambda: self._redis.hset(self._resets, target, reset_id))

    async def revoke(self, session_id: str, until: float) -> None:
        async def revoke_and_prune() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zadd(self._revoked, {session_id: until})
                pipe.zremrangebyscore(self._revoked, "-inf", time.time())  # expired cookies need no revocation
                await pipe.execute()

        await self._run(revoke_and_prune)

    async def close(self) -> None:
        await self._redis.aclose()


class FileStore(Store):
    """A JSON file that the workers of one ``serve --workers`` share; changed under an exclusive lock,
    replaced whole (a reader sees the old file or the new one, never half of one)."""

    def __init__(self, directory: str) -> None:
        self._path = Path(directory) / FILE
        self._lock = Path(directory) / (FILE + ".lock")
        self._seen: tuple[int, int] | None = None

    def _load(self) -> Shared:
        try:
            doc = orjson.loads(self._path.read_bytes())
        except FileNotFoundError:
            return Shared()
        except (OSError, orjson.JSONDecodeError) as exc:
            raise OverridesUnavailable(f"{self._path.name}: {exc}") from exc
        return Shared(set(doc.get("suspended", [])), dict(doc.get("resets", {})), dict(doc.get("revoked", {})))

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_ino

    async def read(self) -> Shared | None:
        stat = self._stat()
        if stat == self._seen:
            return None
        self._seen = stat
        return self._load()

    def _change(self, change: Callable[[Shared], None]) -> None:
        try:
            with open(self._lock, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                shared = self._load()
                change(shared)
                tmp = self._path.with_suffix(f".{os.getpid()}.tmp")
                doc = {"suspended": sorted(shared.suspended), "resets": shared.resets, "revoked": shared.revoked}
                tmp.write_bytes(orjson.dumps(doc))
                os.replace(tmp, self._path)
        except OSError as exc:
            raise OverridesUnavailable(f"{self._path.name}: {exc}") from exc

    async def suspend(self, client: str, suspended: bool) -> None:
        self._change(lambda s: s.suspended.add(client) if suspended else s.suspended.discard(client))

    async def reset(self, target: str, reset_id: str) -> None:
        self._change(lambda s: s.resets.__setitem__(target, reset_id))

    async def revoke(self, session_id: str, until: float) -> None:
        def revoke_and_prune(shared: Shared) -> None:
            now = time.time()
            shared.revoked = {sid: t for sid, t in shared.revoked.items() if t > now}
            shared.revoked[session_id] = until

        self._change(revoke_and_prune)


class Overrides:
    """This process's view of the shared overrides, kept fresh by a task that polls them."""

    def __init__(self, store: Store | None, breakers: Breakers) -> None:
        self.suspended: frozenset[str] = frozenset()  # read on every request: a set lookup, nothing more
        self.revoked: frozenset[str] = frozenset()  # session ids logged out; read on every request with a cookie
        self._revoked_until: dict[str, float] = {}
        self._store = store
        self._breakers = breakers
        self._resets: dict[str, str] | None = None  # None until the first read: older resets are not news
        self._failing = False
        self._changes = 0  # this process's own suspensions: a read begun before one must not undo it
        self._task: asyncio.Task[None] | None = None

    @property
    def shared(self) -> str:
        """Where the overrides are kept: redis, file or memory."""
        if isinstance(self._store, RedisStore):
            return "redis"
        return "file" if isinstance(self._store, FileStore) else "memory"

    def start(self) -> None:
        if self._store is not None:
            self._task = asyncio.get_running_loop().create_task(self._poll())

    async def suspend(self, client: str, suspended: bool) -> None:
        """Suspend (or resume) ``client``: here at once, elsewhere within ``POLL`` seconds."""
        if self._store is not None:
            await self._store.suspend(client, suspended)
        self._changes += 1
        self.suspended = self.suspended | {client} if suspended else self.suspended - {client}

    async def revoke(self, session_id: str, until: float) -> None:
        """Refuse the session ``session_id`` from now until ``until`` (its cookie's expiry): here at once,
        elsewhere within ``POLL`` seconds."""
        if self._store is not None:
            await self._store.revoke(session_id, until)
        self._remember_revoked({session_id: until})

    def _remember_revoked(self, revoked: dict[str, float]) -> None:
        """A revocation is never undone, only forgotten once its cookie has expired: merging is always right."""
        now = time.time()
        merged = {**self._revoked_until, **revoked}
        self._revoked_until = {sid: until for sid, until in merged.items() if until > now}
        self.revoked = frozenset(self._revoked_until)

    async def reset(self, target: str) -> None:
        """End ``target``'s cooldown (and its count of failures): here at once, elsewhere within ``POLL``."""
        reset_id = uuid.uuid4().hex
        if self._store is not None:
            await self._store.reset(target, reset_id)
        if self._resets is not None:
            self._resets[target] = reset_id
        self._breakers.reset(target)

    async def refresh(self) -> None:
        if self._store is None:
            return
        changes = self._changes
        shared = await self._store.read()
        if shared is None:
            return
        if changes == self._changes:
            self.suspended = frozenset(shared.suspended)
        self._remember_revoked(shared.revoked)
        if self._resets is not None:
            for target, reset_id in shared.resets.items():
                if self._resets.get(target) != reset_id:
                    self._breakers.reset(target)
        self._resets = shared.resets

    async def _poll(self) -> None:
        while True:
            try:
                await self.refresh()
            except OverridesUnavailable as exc:
                if not self._failing:
                    log.error("operator overrides (suspended clients) not read, the last ones stay: %s", exc)
                self._failing = True
            else:
                if self._failing:
                    log.warning("operator overrides read again")
                self._failing = False
            await asyncio.sleep(POLL)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._store is not None:
            await self._store.close()


def check(client: ClientConfig, overrides: Overrides) -> None:
    """A client known by its credential may still be refused: disabled in the config, or suspended by an
    operator."""
    if not client.enabled:
        raise AuthenticationFailed("This client is disabled.", code="client_disabled")
    if client.name in overrides.suspended:
        raise AuthenticationFailed("This client is suspended by an operator.", code="client_suspended")


def make_overrides(config: Config, breakers: Breakers) -> Overrides:
    """Shared through Redis when the rate limits are, else through the workers' directory, else not."""
    store: Store | None = None
    if config.state.backend == "redis":
        store = RedisStore(config.state.redis_url, config.state.key_prefix, config.state.timeout)
    elif config.metrics.snapshot_dir:
        store = FileStore(config.metrics.snapshot_dir)
    return Overrides(store, breakers)
