"""``cache:`` and ``strategies[].cache`` parsed strictly, each problem with its path."""

from __future__ import annotations

from gateway.config import CacheConfig
from tests.gateway.test_config import GOOD, parse, problems

STRATEGY = "  - name: default\n"


def with_strategy_cache(value: str, top: str = "") -> str:
    return GOOD.replace(STRATEGY, STRATEGY + f"    cache: {value}\n", 1) + top


def test_defaults_true_and_a_ttl_of_its_own() -> None:
    assert parse(GOOD).cache == CacheConfig("memory", 3600, 268435456)
    assert parse(GOOD).strategies[0].cache_ttl is None
    assert parse(with_strategy_cache("true")).strategies[0].cache_ttl == 3600
    assert parse(with_strategy_cache("true", "cache: {ttl: 60}\n")).strategies[0].cache_ttl == 60
    assert parse(with_strategy_cache("{ttl: 600}")).strategies[0].cache_ttl == 600
    assert parse(with_strategy_cache("false")).strategies[0].cache_ttl is None
    cfg = parse(GOOD + "cache: {backend: redis, max_bytes: 1000}\n")
    assert (cfg.cache.backend, cfg.cache.max_bytes) == ("redis", 1000)


def test_every_problem_names_its_path() -> None:
    assert problems(with_strategy_cache("yes please")) == [
        "strategies[0].cache: expected true, false or {ttl: seconds}"
    ]
    assert problems(with_strategy_cache("{ttl: 0, size: 3}")) == [
        "strategies[0].cache.size: unknown key",
        "strategies[0].cache.ttl: must be positive",
    ]
    assert problems(GOOD + "cache: {backend: disk, ttl: -1, max_bytes: 1.5}\n") == [
        "cache.backend: expected one of memory, redis",
        "cache.ttl: must be positive",
        "cache.max_bytes: expected an integer",
    ]
