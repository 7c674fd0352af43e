"""Rate limits in Redis: one exact budget across gateway processes; Redis gone -> fail open (or closed)."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest

from tests.conftest import ALICE, bearer, sse_events, standard_config
from tests.procs import start_serve, stop, write_config
from tests.redisserver import RedisServer

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def redis_config(upstreams, redis_server, *limits, **state) -> dict:
    data = standard_config(*upstreams)
    data["strategies"][0]["rate_limits"] = list(limits)
    data["state"] = {"backend": "redis", "redis_url": redis_server.url, **state}
    return data


async def test_two_gateway_processes_share_one_exact_budget(tmp_path, upstreams, redis_server):
    path = write_config(tmp_path, redis_config(upstreams, redis_server, {"requests": 30, "per": "minute"}))
    procs = [await start_serve("-c", str(path), env={"ALICE_SECRET": ALICE}) for _ in range(2)]
    try:
        urls = [url for _, url, _ in procs]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as http:

            async def one(i: int) -> tuple[int, int]:
                async with http.post(urls[i % 2] + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
                    await resp.read()
                    return i % 2, resp.status

            warm = [await one(0), await one(1)]  # each process has its Redis connection and script ready
            assert warm == [(0, 200), (1, 200)]
            results = await asyncio.gather(*(one(i) for i in range(100)))
        statuses = Counter(status for _, status in results)
        assert statuses == {200: 28, 429: 72}  # 30 in all, whichever process each request reached
    finally:
        for proc, _, _ in procs:
            assert await stop(proc) == 0


async def test_streamed_usage_is_counted_in_redis(upstreams, redis_server, start_gateway, http):
    gw = await start_gateway(redis_config(upstreams, redis_server, {"total_tokens": 20, "per": "minute"}))
    statuses = []
    for _ in range(3):
        async with http.post(gw.url + "/v1/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
            statuses.append(resp.status)
            if resp.status == 200:
                await sse_events(resp)
        await asyncio.sleep(0.1)  # the usage is counted just after the stream ends
    assert statuses == [200, 200, 429]


async def test_redis_killed_mid_run_fails_open_and_recovers(upstreams, redis_server, start_gateway, http):
    gw = await start_gateway(redis_config(upstreams, redis_server, {"requests": 1000, "per": "minute"}))
    async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.status == 200 and resp.headers["x-ratelimit-remaining-requests"] == "999"
    redis_server.stop()
    for _ in range(5):
        async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
            assert resp.status == 200  # keeps serving
            assert "x-ratelimit-remaining-requests" not in resp.headers
    async with http.get(gw.url + "/health") as resp:
        health = await resp.json()
    assert health["status"] == "degraded" and health["state"]["backend"] == "redis" and not health["state"]["ok"]
    redis_server.start()  # same port, empty: the budget starts again
    await asyncio.sleep(1.1)  # past the backoff after the last failure
    async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.status == 200 and resp.headers["x-ratelimit-remaining-requests"] == "999"
    async with http.get(gw.url + "/health") as resp:
        assert (await resp.json())["status"] == "ok"


async def test_fail_closed_refuses_while_redis_is_gone(upstreams, redis_server, start_gateway, http):
    gw = await start_gateway(
        redis_config(upstreams, redis_server, {"requests": 1000, "per": "minute"}, fail_closed=True)
    )
    redis_server.stop()
    async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.status == 503
        assert (await resp.json())["error"]["code"] == "rate_limit_state_unavailable"
    async with http.get(gw.url + "/v1/models", headers=bearer()) as resp:  # not an inference call: served
        assert resp.status == 200


async def test_token_endpoint_throttle_is_shared_by_replicas(upstreams, redis_server, start_gateway, http):
    data = redis_config(upstreams, redis_server)
    one, two = await start_gateway(data), await start_gateway(data)
    wrong = {"grant_type": "client_credentials", "client_id": "alice", "client_secret": "lr-wrong-0123456789abcd"}
    for i in range(5):
        async with http.post((one, two)[i % 2].url + "/oauth/token", data=wrong) as resp:
            assert resp.status == 401
    for replica in (one, two):
        async with http.post(replica.url + "/oauth/token", data={**wrong, "client_secret": ALICE}) as resp:
            assert resp.status == 429
