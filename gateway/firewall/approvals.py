"""Requests held for an admin's decision, and the decisions, on every process that serves.

A held request waits on a future of its own process. The approval it waits for is written where every
process can list it, and a decision goes to every process, which hands it to the future it holds, if
any: in this process's memory (:class:`MemoryBoard`), or in Redis (:class:`RedisBoard`: the pending
approvals in one hash, the decisions on one pub/sub channel, the grants ``allow_for`` and
``allow_always`` gave as keys), so a decision taken through any process or replica reaches the request
wherever it is held. A board that cannot be reached raises :class:`BoardUnavailable`: nobody could list or
decide what would wait there, so the firewall refuses rather than holds (or allows).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import orjson

log = logging.getLogger("localrouter.firewall")

DECISIONS = ("allow_once", "allow_for", "allow_always", "deny")
ALLOWING = frozenset(DECISIONS[:3])
#: the gateway's own ends of a held request, never an admin's: its client cancelled it (an MCP
#: ``notifications/cancelled``, which may reach another process than the one holding it), and the shutdown
CANCELLED, SHUTDOWN = "cancelled", "shutdown"
#: seconds after a failed Redis call during which every call fails at once, instead of waiting on it again
BACKOFF = 1.0
T = TypeVar("T")


class BoardUnavailable(Exception):
    """The board (Redis) cannot be reached, or did not answer within ``state.timeout``."""


@dataclass(frozen=True, slots=True)
class Approval:
    """A request waiting: its ``id``, the ``client``, ``what`` it would reach (a model id or an MCP item),
    the ``rule`` that asked, ``since`` (Unix seconds) and until when it waits (``expires``); ``call``: for
    an MCP call, a digest of its session and JSON-RPC id, by which its client may cancel it."""

    id: str
    client: str
    what: str
    rule: str
    since: float
    expires: float
    call: str | None = None

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "client": self.client, "what": self.what, "rule": self.rule, "since": self.since}


@dataclass(frozen=True, slots=True)
class Decision:
    """An admin's answer to approval ``id``: one of :data:`DECISIONS`, by ``actor``; ``seconds`` for
    ``allow_for``."""

    id: str
    decision: str
    actor: str
    seconds: float | None = None

    @property
    def allows(self) -> bool:
        return self.decision in ALLOWING


def new_id() -> str:
    return "apr_" + secrets.token_hex(12)


class Board(abc.ABC):
    """Where approvals wait and decisions travel. ``deliver`` is called with every decision taken, on
    every process (the one that holds its request acts on it)."""

    deliver: Callable[[Decision], None]

    async def start(self, deliver: Callable[[Decision], None]) -> None:
        self.deliver = deliver

    @abc.abstractmethod
    async def post(self, approval: Approval) -> None: ...

    @abc.abstractmethod
    async def take(self, approval_id: str) -> Approval | None:
        """Remove a waiting approval; None if it is not waiting (decided, gone): exactly one taker wins."""

    @abc.abstractmethod
    async def waiting(self) -> list[Approval]: ...

    @abc.abstractmethod
    async def publish(self, decision: Decision) -> None: ...

    @abc.abstractmethod
    async def grant(self, client: str, what: str, seconds: float | None, generation: str) -> None:
        """Allow ``client`` to reach ``what`` without asking, for ``seconds`` (None: while ``generation``,
        the config's, is the one running)."""

    @abc.abstractmethod
    async def granted(self, client: str, what: str, generation: str) -> bool: ...

    async def close(self) -> None:
        return None


class MemoryBoard(Board):
    """This process alone: what it holds is all there is to list and decide."""

    def __init__(self) -> None:
        self._waiting: dict[str, Approval] = {}
        self._for: dict[tuple[str, str], float] = {}  # (client, what) -> until (monotonic)
        self._always: dict[tuple[str, str], str] = {}  # (client, what) -> the config generation

    async def post(self, approval: Approval) -> None:
        self._waiting[approval.id] = approval

    async def take(self, approval_id: str) -> Approval | None:
        return self._waiting.pop(approval_id, None)

    async def waiting(self) -> list[Approval]:
        return list(self._waiting.values())

    async def publish(self, decision: Decision) -> None:
        self.deliver(decision)

    async def grant(self, client: str, what: str, seconds: float | None, generation: str) -> None:
        if seconds is None:
            self._always[client, what] = generation
        else:
            self._for[client, what] = time.monotonic() + seconds

    async def granted(self, client: str, what: str, generation: str) -> bool:
        if self._always.get((client, what)) == generation:
            return True
        until = self._for.get((client, what))
        if until is not None and until <= time.monotonic():
            del self._for[client, what]
            return False
        return until is not None


class RedisBoard(Board):
    """Every process and replica sharing one Redis (``state.redis_url``): keys under ``{prefix}:firewall:``."""

    def __init__(self, url: str, prefix: str, timeout: float) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # one retry (a connection idle since a restart of Redis fails once), not redis-py's many with pauses:
        # every call is bounded by ``timeout`` as a whole
        once = Retry(NoBackoff(), 1)
        self._redis = aioredis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=once)
        self._listener = aioredis.Redis.from_url(url, socket_connect_timeout=timeout)
        self._prefix = f"{prefix}:firewall:"
        self._timeout = timeout
        self._down_until = 0.0
        self._error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    def _key(self, name: str) -> str:
        return self._prefix + name

    async def _run(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call`` within ``timeout``; a failure is :class:`BoardUnavailable`, and so is every call for
        :data:`BACKOFF` seconds after one."""
        from redis.exceptions import RedisError

        if time.monotonic() < self._down_until:
            raise BoardUnavailable(self._error)
        try:
            async with asyncio.timeout(self._timeout):
                result = await call()
        except (RedisError, OSError, TimeoutError) as exc:
            if self._error is None:
                log.error("firewall: redis unreachable (%s); requests that ask are refused (503)", type(exc).__name__)
            self._error, self._down_until = type(exc).__name__, time.monotonic() + BACKOFF
            raise BoardUnavailable(self._error) from exc
        if self._error is not None:
            log.warning("firewall: redis reachable again")
            self._error = None
        return result

    async def start(self, deliver: Callable[[Decision], None]) -> None:
        await super().start(deliver)
        self._task = asyncio.get_running_loop().create_task(self._listen())
        with contextlib.suppress(TimeoutError):  # Redis down: requests that ask wait, or time out, meanwhile
            async with asyncio.timeout(2):
                await self._subscribed.wait()

    async def _listen(self) -> None:
        """Every decision published, handed to ``deliver``; the subscription is made again after a failure."""
        from redis.exceptions import RedisError

        while True:
            try:
                async with self._listener.pubsub() as pubsub:
                    await pubsub.subscribe(self._key("decisions"))
                    self._subscribed.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._delivered(message["data"])
            except (RedisError, OSError) as exc:
                log.warning("firewall: redis subscription lost (%s); subscribing again in 1s", type(exc).__name__)
                await asyncio.sleep(1)

    def _delivered(self, data: bytes) -> None:
        try:
            self.deliver(Decision(**orjson.loads(data)))
        except (orjson.JSONDecodeError, TypeError):
            log.warning("firewall: a malformed decision on the channel was ignored")

    async def post(self, approval: Approval) -> None:
        await self._run(lambda: self._redis.hset(self._key("waiting"), approval.id, orjson.dumps(asdict(approval))))

    async def take(self, approval_id: str) -> Approval | None:
        raw, removed = await self._run(lambda: self._take(approval_id))
        return Approval(**orjson.loads(raw)) if removed and raw else None

    async def _take(self, approval_id: str) -> list[Any]:
        key = self._key("waiting")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(key, approval_id)
            pipe.hdel(key, approval_id)
            return await pipe.execute()

    async def waiting(self) -> list[Approval]:
        rows = await self._run(lambda: self._redis.hvals(self._key("waiting")))
        now = time.time()
        out = [Approval(**orjson.loads(raw)) for raw in rows]
        stale = [a.id for a in out if a.expires + 5 < now]  # its process died holding it
        if stale:
            await self._run(lambda: self._redis.hdel(self._key("waiting"), *stale))
        return [a for a in out if a.id not in stale]

    async def publish(self, decision: Decision) -> None:
        await self._run(lambda: self._redis.publish(self._key("decisions"), orjson.dumps(asdict(decision))))

    def _grant_key(self, kind: str, client: str, what: str) -> str:
        return self._key(f"{kind}:{client}:{what}")

    async def grant(self, client: str, what: str, seconds: float | None, generation: str) -> None:
        if seconds is None:
            await self._run(lambda: self._redis.set(self._grant_key("always", client, what), generation))
        else:
            key, ms = self._grant_key("for", client, what), max(1, int(seconds * 1000))
            await self._run(lambda: self._redis.set(key, b"1", px=ms))

    async def granted(self, client: str, what: str, generation: str) -> bool:
        keys = self._grant_key("always", client, what), self._grant_key("for", client, what)
        always, for_ = await self._run(lambda: self._redis.mget(*keys))
        return for_ is not None or always == generation.encode()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._listener.aclose()
        await self._redis.aclose()
