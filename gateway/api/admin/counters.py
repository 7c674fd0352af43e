"""What the admin API reads from the metrics: every worker's numbers summed, as a ``/metrics`` scrape sums
them, and with Redis every replica's (``Observer.deployment``), so the page and Prometheus's sum over the
replicas agree."""

from __future__ import annotations

from collections import Counter
from typing import Any

from gateway.config import Config
from gateway.observability.metrics import CACHE_BYTES, CACHE_LOOKUPS, FIREWALL, POOL_REQUESTS, STREAMS, Values


def total(values: Values, family: str) -> float:
    """One family's cells summed over all their labels."""
    return sum(cell[0] for cell in values[family].values())


def cache(values: Values, config: Config) -> dict[str, Any] | None:
    """The response cache's lookups, hits, hit ratio (null before the first lookup) and bytes held (null
    with the Redis backend, which keeps no count); null when no strategy of ``config`` has a cache."""
    if not any(s.cache_ttl is not None for s in config.strategies):
        return None
    by_result = {labels[0]: int(cell[0]) for labels, cell in values[CACHE_LOOKUPS.name].items()}
    hits, lookups = by_result.get("hit", 0), sum(by_result.values())
    held = int(total(values, CACHE_BYTES.name)) if config.cache.backend == "memory" else None
    return {"lookups": lookups, "hits": hits, "hit_ratio": hits / lookups if lookups else None, "bytes": held}


def firewall(values: Values) -> dict[str, Any]:
    """The firewall's decisions: how many, and how many of each action (every client's)."""
    by_action: Counter[str] = Counter()
    for (_, action), cell in values[FIREWALL.name].items():
        by_action[action] += int(cell[0])
    return {"total": sum(by_action.values()), "by_action": dict(sorted(by_action.items()))}


def streams(values: Values) -> int:
    return int(total(values, STREAMS.name))


def pool_requests(values: Values) -> dict[tuple[str, str], int]:
    """Requests each pool's target answered, by (pool name, target id)."""
    return {(pool, target): int(cell[0]) for (pool, target), cell in values[POOL_REQUESTS.name].items()}
