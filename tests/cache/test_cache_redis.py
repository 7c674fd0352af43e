"""The response cache in Redis: a second gateway process answers from the first one's entry, which expires
by its TTL in Redis; Redis gone, the gateway answers from its upstreams."""

from __future__ import annotations

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.cache.test_response_cache import CHAT, cached_config, calls
from tests.conftest import ALICE, bearer
from tests.procs import start_serve, stop, write_config
from tests.redisserver import RedisServer


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def redis_cache_config(upstreams, redis_server, ttl: int = 600) -> dict:
    return cached_config(
        upstreams,
        strategy_cache={"ttl": ttl},
        cache={"backend": "redis"},
        state={"redis_url": redis_server.url},  # the limits stay in memory: the cache alone is shared
    )


async def test_a_second_serve_process_hits_the_first_ones_entry(tmp_path, upstreams, redis_server) -> None:
    path = write_config(tmp_path, redis_cache_config(upstreams, redis_server))
    procs = [await start_serve("-c", str(path), env={"ALICE_SECRET": ALICE}) for _ in range(2)]
    try:
        async with aiohttp.ClientSession() as http:
            seen = []
            for _, url, _ in procs:
                for body in (CHAT, {**CHAT, "stream": True}):
                    async with http.post(url + "/v1/chat/completions", json=body, headers=bearer()) as resp:
                        seen.append((resp.headers["x-localrouter-cache"], await resp.read()))
        assert [verdict for verdict, _ in seen] == ["miss", "miss", "hit", "hit"]
        assert seen[2][1] == seen[0][1] and seen[3][1] == seen[1][1]
        assert calls(upstreams[0]) == 2
        client = aioredis.Redis.from_url(redis_server.url)
        keys = await client.keys("localrouter:cache:*")
        ttls = [await client.ttl(key) for key in keys]
        await client.aclose()
        assert len(keys) == 2 and all(0 < ttl <= 600 for ttl in ttls)  # each expires by its strategy's ttl
    finally:
        for proc, _, _ in procs:
            assert await stop(proc) == 0


async def test_redis_down_every_request_goes_upstream(upstreams, redis_server, start_gateway, http) -> None:
    gw = await start_gateway(redis_cache_config(upstreams, redis_server))
    redis_server.stop()
    for _ in range(2):
        async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
            assert resp.status == 200 and resp.headers["x-localrouter-cache"] == "miss"
    assert calls(upstreams[0]) == 2
