"""A decision taken through one gateway process reaches the request another holds: two ``serve``
processes sharing a real redis-server (pending approvals in a hash, decisions on pub/sub, grants as keys)."""

from __future__ import annotations

import asyncio

import pytest
from openai import AsyncOpenAI

from tests.conftest import ALICE, ENV
from tests.firewall.conftest import config, decide, waiting
from tests.procs import start_serve, stop, write_config
from tests.redisserver import RedisServer


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


async def test_a_decision_through_one_process_reaches_the_request_another_holds(
    tmp_path, fake_upstream, redis_server, http
):
    fake = await fake_upstream("primary", models=("gpt-4o-mini", "gpt-4o", "o1"))
    data = config(fake.base_url)
    data["state"] = {"backend": "redis", "redis_url": redis_server.url}
    path = write_config(tmp_path, data)
    first, first_url, _ = await start_serve("-c", str(path), env=ENV)
    second, second_url, _ = await start_serve("-c", str(path), env=ENV)
    try:
        async with AsyncOpenAI(base_url=first_url + "/v1", api_key=ALICE, max_retries=0, timeout=20) as sdk:
            held = asyncio.create_task(
                sdk.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
            )
            [approval] = await waiting(http, second_url)  # listed by the process that does not hold it
            assert approval["what"] == "openai/gpt-4o" and not held.done()
            assert await decide(http, second_url, approval["id"], "allow_for", seconds=60) == 200
            answer = await asyncio.wait_for(held, 10)
            assert answer.model == "openai/gpt-4o"
            assert await waiting(http, first_url, count=0) == []
        # the grant holds on the other process too: no asking there
        async with AsyncOpenAI(base_url=second_url + "/v1", api_key=ALICE, max_retries=0, timeout=5) as sdk:
            await sdk.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert len(fake.received) == 2
    finally:
        assert await stop(first) == 0
        assert await stop(second) == 0
