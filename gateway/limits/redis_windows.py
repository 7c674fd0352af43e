"""The windows of gateway.limits.windows in Redis: every gateway process and host shares one exact budget.

Each window is a hash (bucket index -> amount) that expires when it can no longer count. Admission is
one Lua script over all the windows of a request, so check-and-count is atomic across processes; the
clock is Redis's own (``TIME``), so hosts with skewed clocks still agree on the windows.
When Redis cannot be reached the caller gets :class:`StateUnavailable` at once for ``backoff``
seconds after each failure, instead of every request waiting on a dead connection; a request that
merely waits for a free connection is not such a failure (see :class:`RedisState`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.limits.windows import BUCKETS, Check, Reading, State, StateBusy, StateUnavailable

log = logging.getLogger("localrouter.state")

# gateway.limits.windows._Window.judge, in Lua. ARGV: for each key, window, limit, consume.
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local B = tonumber(ARGV[1])
local admitted = 1
local rows = {}
for i = 1, #KEYS do
  local window, limit, consume = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), tonumber(ARGV[3*i+1])
  local width = window / B
  local idx = math.floor(now / width)
  local oldest = idx - B + 1
  local flat = redis.call('HGETALL', KEYS[i])
  local keys, vals, stale, used = {}, {}, {}, 0
  for j = 1, #flat, 2 do
    local k, v = tonumber(flat[j]), tonumber(flat[j+1])
    if k < oldest then table.insert(stale, flat[j]) else table.insert(keys, k); vals[k] = v; used = used + v end
  end
  if #stale > 0 then redis.call('HDEL', KEYS[i], unpack(stale)) end
  table.sort(keys)
  local ok
  if consume > 0 then ok = used + consume <= limit else ok = used < limit end
  local retry = -1
  if not ok then
    admitted = 0
    local need, freed = used + consume - limit, 0
    for _, k in ipairs(keys) do
      freed = freed + vals[k]
      if (consume > 0 and freed >= need) or (consume == 0 and freed > need) then
        retry = (k + B) * width - now
        break
      end
    end
  end
  local reset = 0
  if #keys > 0 then reset = (keys[#keys] + B) * width - now end
  rows[i] = {used, retry, reset, idx, width, window, consume}
end
local out = {admitted}
for i = 1, #KEYS do
  local r = rows[i]
  if admitted == 1 and r[7] > 0 then
    redis.call('HINCRBYFLOAT', KEYS[i], string.format('%d', r[4]), r[7])
    redis.call('EXPIRE', KEYS[i], math.ceil(r[6] + r[5]) + 1)
    r[1] = r[1] + r[7]
    r[3] = (r[4] + B) * r[5] - now
  end
  table.insert(out, tostring(r[1]))
  table.insert(out, tostring(r[2]))
  table.insert(out, tostring(r[3]))
end
return out
"""

# ARGV: for each key, window, amount.
ADD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local B = tonumber(ARGV[1])
for i = 1, #KEYS do
  local window, amount = tonumber(ARGV[2*i]), tonumber(ARGV[2*i+1])
  local width = window / B
  redis.call('HINCRBYFLOAT', KEYS[i], string.format('%d', math.floor(now / width)), amount)
  redis.call('EXPIRE', KEYS[i], math.ceil(window + width) + 1)
end
return 1
"""


class RedisState(State):
    """At most ``max_connections`` calls at a time; the rest wait their turn, up to ``pool_timeout`` seconds
    (then :class:`StateBusy` for that call alone). Only a failed connection or a timed-out reply is an
    outage: then every call fails at once for ``backoff`` seconds, after which one call probes Redis
    while the others keep failing at once, and a success ends the outage."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        max_connections: int = 50,
        timeout: float = 2.0,
        backoff: float = 1.0,
        pool_timeout: float = 5.0,
    ) -> None:
        self._redis = aioredis.Redis.from_url(
            url,
            max_connections=max_connections,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
        )
        # the turns are taken here rather than in redis-py's pool: its "no connection available" is a
        # ConnectionError like a refused one, and waiting for a turn must never look like an outage
        self._turns = asyncio.Semaphore(max_connections)
        self._pool_timeout = pool_timeout
        self._prefix = prefix + ":"
        self._admit = self._redis.register_script(ADMIT)
        self._add = self._redis.register_script(ADD)
        self._backoff = backoff
        self._down_until = 0.0
        self._error: str | None = None
        self._probing = False

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def _run(self, what: str, call):  # type: ignore[no-untyped-def]
        try:
            async with asyncio.timeout(self._pool_timeout):
                await self._turns.acquire()
        except TimeoutError:
            raise StateBusy(f"no redis connection free within {self._pool_timeout:g}s") from None
        try:
            return await self._call(what, call)
        finally:
            self._turns.release()

    async def _call(self, what: str, call):  # type: ignore[no-untyped-def]
        probe = self._error is not None
        if probe:
            if self._probing or time.monotonic() < self._down_until:
                raise StateUnavailable(self._error)
            self._probing = True
        try:
            if probe:
                # the idle connections were made before the outage, maybe to a server since restarted:
                # each would fail once on its next use, and each failure would judge Redis down again
                await self._redis.connection_pool.disconnect(inuse_connections=False)
            result = await call()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            self._down(what, type(exc).__name__)
            raise StateUnavailable(type(exc).__name__) from exc
        except RedisError as exc:  # Redis answered, with an error: this call failed, but Redis is there
            if probe:
                self._up()
            raise StateUnavailable(type(exc).__name__) from exc
        finally:
            if probe:
                self._probing = False  # also when the probe is cancelled: else none would probe again
        if probe:
            self._up()
        return result

    def _down(self, what: str, error: str) -> None:
        if self._error is None:
            log.error("redis state backend unreachable (%s): %s", what, error)
        self._error = error
        self._down_until = time.monotonic() + self._backoff

    def _up(self) -> None:
        log.warning("redis state backend reachable again")
        self._error = None

    async def admit(self, checks: list[Check]) -> tuple[bool, list[Reading]]:
        argv: list[float] = [BUCKETS]
        for c in checks:
            argv += [c.window, c.limit, c.consume]
        out = await self._run("admit", lambda: self._admit(keys=[self._key(c.key) for c in checks], args=argv))
        readings = []
        for i in range(len(checks)):
            used, retry, reset = (float(x) for x in out[1 + 3 * i : 4 + 3 * i])
            readings.append(Reading(used, retry if retry >= 0 else None, max(reset, 0.0)))
        return bool(int(out[0])), readings

    async def add(self, items: list[tuple[str, float, float]]) -> None:
        if not items:
            return
        argv: list[float] = [BUCKETS]
        for _, window, amount in items:
            argv += [window, amount]
        await self._run("add", lambda: self._add(keys=[self._key(k) for k, _, _ in items], args=argv))

    def script(self, source: str) -> Callable[[list[str], list[Any]], Awaitable[Any]]:
        """``source`` (Lua) as a call ``(keys, args) -> reply`` on these connections, with their outage handling
        and key prefix: for other state every process shares (MCP sessions)."""
        registered = self._redis.register_script(source)

        async def run(keys: list[str], args: list[Any]) -> Any:
            return await self._run("script", lambda: registered(keys=[self._key(k) for k in keys], args=args))

        return run

    async def clear(self, keys: list[str]) -> None:
        await self._run("clear", lambda: self._redis.delete(*[self._key(k) for k in keys]))

    def health(self) -> dict[str, object]:
        return {"backend": self.backend, "ok": self._error is None, **({"error": self._error} if self._error else {})}

    async def close(self) -> None:
        await self._redis.aclose()
