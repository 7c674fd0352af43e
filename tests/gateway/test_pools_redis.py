"""A ``usage`` pool's budgets shared through Redis by two real ``serve`` processes."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest

from tests.conftest import ALICE, bearer
from tests.gateway.test_pools import calls, chat, config
from tests.procs import start_serve, stop, write_config
from tests.redisserver import RedisServer


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


async def test_two_serve_processes_never_exceed_a_targets_budget(tmp_path, fake_upstream, redis_server):
    fakes = {name: await fake_upstream(name, models=("gpt-4o",)) for name in ("east", "west")}
    limits = {"east/gpt-4o": {"requests_per_minute": 20}, "west/gpt-4o": {"requests_per_minute": 30}}
    data = config(fakes, {"balance": "usage", "limits": limits})
    data["state"] = {"backend": "redis", "redis_url": redis_server.url}
    path = write_config(tmp_path, data)
    procs = [await start_serve("-c", str(path), env={"ALICE_SECRET": ALICE}) for _ in range(2)]
    try:
        urls = [url for _, url, _ in procs]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as http:

            async def one(i: int) -> tuple[int, str | None]:
                async with http.post(urls[i % 2] + "/v1/chat/completions", json=chat(), headers=bearer()) as resp:
                    await resp.read()
                    return resp.status, resp.headers.get("x-localrouter-model")

            results = await asyncio.gather(*(one(i) for i in range(120)))
    finally:
        for proc, _, _ in procs:
            assert await stop(proc) == 0
    assert Counter(status for status, _ in results) == {200: 50, 429: 70}
    assert Counter(model for status, model in results if status == 200) == {"east/gpt-4o": 20, "west/gpt-4o": 30}
    assert (calls(fakes["east"]), calls(fakes["west"])) == (20, 30)
