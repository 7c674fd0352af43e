"""The MCP sessions every process shares, in Redis (``state.backend: redis``): one sorted set per client,
its session ids scored by when each was last used, on Redis's clock.

A session stands while its id is in its client's set and was used within ``idle`` seconds; a DELETE
removes it, so every process finds it ended at its next request. Opening one past the client's cap
removes that client's least recently used ones. Each operation is one Lua script: one round trip.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

#: ``(keys, args) -> reply``: a Lua script run on the state backend's connections (RedisState.script)
Script = Callable[[list[str], list[Any]], Awaitable[Any]]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local idle = tonumber(ARGV[2])
"""

# ARGV: session id, idle, cap. The ids that ended to keep the client within its cap.
OPEN = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - idle)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(idle) + 1)
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if over <= 0 then return {} end
local ended = redis.call('ZRANGE', KEYS[1], 0, over - 1)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
return ended
"""
)

# ARGV: session id, idle, use (1: mark it used). 1 if it stands.
TOUCH = (
    _NOW
    + """
local used = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not used then return 0 end
if now - tonumber(used) > idle then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('EXPIRE', KEYS[1], math.ceil(idle) + 1)
end
return 1
"""
)

CLOSE = "return redis.call('ZREM', KEYS[1], ARGV[1])"


def _key(client: str) -> str:
    return f"mcp:sessions:{client}"


class RedisSessions:
    """:class:`gateway.mcp.sessions.Shared` in Redis. ``script`` turns Lua into a call; its calls raise
    :class:`gateway.mcp.sessions.SharedUnavailable` when Redis cannot be reached."""

    def __init__(self, script: Callable[[str], Script]) -> None:
        self._open, self._touch, self._close = script(OPEN), script(TOUCH), script(CLOSE)

    async def open(self, client: str, session_id: str, idle: float, cap: int) -> list[str]:
        ended = await self._open([_key(client)], [session_id, idle, cap])
        return [e.decode() if isinstance(e, bytes) else str(e) for e in ended]

    async def touch(self, client: str, session_id: str, idle: float, use: bool) -> bool:
        return bool(await self._touch([_key(client)], [session_id, idle, 1 if use else 0]))

    async def close(self, client: str, session_id: str) -> None:
        await self._close([_key(client)], [session_id])
