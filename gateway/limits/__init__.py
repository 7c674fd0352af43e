"""Per-client budgets: the limiter that admits requests and counts what they used (``limiter``), over
sliding windows kept in memory (``windows``) or shared by every process in Redis (``redis_windows``)."""

from __future__ import annotations

from gateway.config import StateConfig
from gateway.limits.windows import MemoryState, State


def make_state(config: StateConfig) -> State:
    """The backend ``state:`` names (Redis is imported only when configured)."""
    if config.backend == "redis":
        from gateway.limits.redis_windows import RedisState

        return RedisState(
            config.redis_url,
            config.key_prefix,
            max_connections=config.max_connections,
            pool_timeout=config.pool_timeout,
            timeout=config.timeout,
        )
    return MemoryState()
