"""The firewall beside pools and the response cache, over real HTTP against fake upstreams: a pool is no way
round a rule (on the pool, on one of its targets, or on the pool as a fallback), a cached answer never
answers a request a rule would hold (once allowed it may), and a redacted secret never reaches the cache
store (a real redis-server's bytes are read)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.conftest import ALICE, bearer
from tests.fakes.openai_upstream import FakeOpenAI, Script
from tests.firewall.conftest import AWS_KEY, ROOT_SECRET, decide, waiting
from tests.redisserver import RedisServer

HI = [{"role": "user", "content": "hi"}]
OTHER_AWS_KEY = "AKIAZ3B7QW9XRTYU2PLM"
POOL_TARGETS = ["east/gpt-4o", "west/gpt-4o"]


class EchoFake(FakeOpenAI):
    """Answers a chat with the last message's text: what the upstream was sent shows in the answer."""

    def _complete(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = super()._complete(path, body)
        answer["choices"][0]["message"]["content"] = f"you said: {body['messages'][-1]['content']}"
        return answer


@pytest.fixture
async def fakes():
    made = [await FakeOpenAI(name, models=("gpt-4o", "mini")).start() for name in ("east", "west")]
    yield made
    for fake in made:
        await fake.stop()


def config(fakes: list[FakeOpenAI], rules: list[dict[str, str]], **strategy: Any) -> dict[str, Any]:
    """Providers east and west, pool ``gpt`` over their gpt-4o (round robin); alice's strategy has ``rules``."""
    providers = [
        {"name": f.name, "base_url": f.base_url, "models": ["gpt-4o", "mini"], "timeouts": {"first_byte": 5}}
        for f in fakes
    ]
    return {
        "providers": providers,
        "pools": [{"name": "gpt", "targets": POOL_TARGETS, "balance": "round_robin"}],
        "strategies": [
            {"name": "agents", "allow": ["*"], "aliases": {"big": "pool/gpt"}, "firewall": rules, **strategy},
            {"name": "ops", "allow": ["*"]},
        ],
        "clients": [
            {"name": "alice", "secret": ALICE, "strategy": "agents"},
            {"name": "root", "secret": ROOT_SECRET, "strategy": "ops", "admin": True},
        ],
        "firewall": {"ask_timeout": 10, "secrets": "off"},
    }


async def chat(http: aiohttp.ClientSession, url: str, model: str, messages: Any = HI) -> tuple[int, Any, dict]:
    body = {"model": model, "messages": messages}
    async with http.post(f"{url}/v1/chat/completions", json=body, headers=bearer()) as resp:
        return resp.status, await resp.json(), dict(resp.headers)


def served(fake: FakeOpenAI) -> int:
    return sum(1 for r in fake.received if r.path == "/v1/chat/completions")


async def test_a_deny_on_the_pool_holds_for_its_alias(fakes, start_gateway, http):
    gw = await start_gateway(config(fakes, [{"match": "pool/gpt", "action": "deny"}]))
    for model in ("pool/gpt", "big"):
        status, body, _ = await chat(http, gw.url, model)
        assert status == 403 and body["error"]["code"] == "firewall_denied", body
        assert "rule `pool/gpt`" in body["error"]["message"]
    assert (await chat(http, gw.url, "east/gpt-4o"))[0] == 200  # the target itself: no rule speaks of it
    assert [served(f) for f in fakes] == [1, 0]


async def test_a_deny_on_the_pool_leaves_it_out_as_a_fallback(fakes, start_gateway, http):
    """``east/mini`` falls back to the pool: the pool is denied, so it is left out, as a denied model is."""
    rules = [{"match": "pool/gpt", "action": "deny"}]
    gw = await start_gateway(config(fakes, rules, fallbacks={"east/mini": ["pool/gpt"]}))
    fakes[0].queue(Script(status=500))
    status, body, _ = await chat(http, gw.url, "east/mini")
    assert status == 503, body
    assert [r.body["model"] for r in fakes[0].received] == ["mini"] and served(fakes[1]) == 0


async def test_an_ask_on_the_pool_as_a_fallback_is_left_out(fakes, start_gateway, http):
    rules = [{"match": "pool/*", "action": "ask"}]
    gw = await start_gateway(config(fakes, rules, fallbacks={"east/mini": ["pool/gpt"]}))
    fakes[0].queue(Script(status=500))
    status, _, _ = await chat(http, gw.url, "east/mini")  # never held: a fallback never waits
    assert status == 503 and served(fakes[1]) == 0
    assert await waiting(http, gw.url, count=0) == []


async def test_a_deny_on_one_target_of_a_pool_leaves_it_out(fakes, start_gateway, http):
    gw = await start_gateway(config(fakes, [{"match": "east/*", "action": "deny"}]))
    for _ in range(4):  # round robin would give east every other turn
        status, body, headers = await chat(http, gw.url, "pool/gpt")
        assert status == 200 and headers["x-localrouter-model"] == "west/gpt-4o", body
    assert [served(f) for f in fakes] == [0, 4]
    gw = await start_gateway(config(fakes, [{"match": "*/gpt-4o", "action": "deny"}]))
    status, body, _ = await chat(http, gw.url, "pool/gpt")
    assert status == 403 and body["error"]["code"] == "firewall_denied"
    assert [served(f) for f in fakes] == [0, 4]


async def test_an_ask_on_one_target_of_a_pool_leaves_it_out_while_another_serves_unasked(fakes, start_gateway, http):
    """A pool is one model: its target that would ask is left out while another may serve without asking,
    so no request is held (concurrent ones included), whichever target the rule picks."""
    data = config(fakes, [{"match": "east/gpt-4o", "action": "ask"}])
    data["firewall"]["ask_timeout"] = 1  # a request held would get its 403 soon
    gw = await start_gateway(data)
    answers = await asyncio.wait_for(asyncio.gather(*(chat(http, gw.url, "pool/gpt") for _ in range(6))), 5)
    assert [(status, headers["x-localrouter-model"]) for status, _, headers in answers] == [(200, "west/gpt-4o")] * 6
    assert [served(f) for f in fakes] == [0, 6]
    assert await waiting(http, gw.url, count=0) == []


async def test_an_ask_on_every_target_of_a_pool_holds_the_request(fakes, start_gateway, http):
    """Only when every target would ask is the request held, and then about its pick alone."""
    gw = await start_gateway(config(fakes, [{"match": "*/gpt-4o", "action": "ask"}]))

    async def deny_all() -> None:
        while True:
            for approval in await waiting(http, gw.url):
                assert approval["what"] in POOL_TARGETS
                await decide(http, gw.url, approval["id"], "deny")

    denier = asyncio.create_task(deny_all())
    try:
        statuses = [(await chat(http, gw.url, "pool/gpt"))[0] for _ in range(2)]
    finally:
        denier.cancel()
        await asyncio.gather(denier, return_exceptions=True)
    assert statuses == [403, 403]
    assert [served(f) for f in fakes] == [0, 0]


async def test_a_cached_answer_never_answers_a_request_that_would_be_held(fakes, start_gateway, http):
    gw = await start_gateway(config(fakes, [{"match": "east/mini", "action": "ask"}], cache=True))

    async def held_then(decision: str) -> tuple[int, Any, dict]:
        task = asyncio.create_task(chat(http, gw.url, "east/mini"))
        [approval] = await waiting(http, gw.url)
        assert not task.done()  # held, with an answer in the cache for it
        assert await decide(http, gw.url, approval["id"], decision) == 200
        return await asyncio.wait_for(task, 10)

    status, first, headers = await held_then("allow_once")
    assert status == 200 and headers["x-localrouter-cache"] == "miss"
    status, body, _ = await held_then("deny")
    assert status == 403 and body["error"]["code"] == "firewall_denied"
    status, again, headers = await held_then("allow_once")  # allowed: the cache may answer it
    assert status == 200 and headers["x-localrouter-cache"] == "hit" and again == first
    assert served(fakes[0]) == 1


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


async def test_a_redacted_secret_is_the_key_and_never_reaches_the_redis_cache(
    tmp_path, redis_server, start_gateway, http
):
    echo = await EchoFake("east", models=("gpt-4o", "mini")).start()
    try:
        data = config([echo], [], cache=True)
        data["pools"] = []
        data["strategies"][0].pop("aliases")
        data["firewall"]["secrets"] = "redact"
        data["cache"] = {"backend": "redis"}
        data["state"] = {"redis_url": redis_server.url}
        gw = await start_gateway(data)
        answers = []
        for key in (AWS_KEY, OTHER_AWS_KEY):  # two secrets of a kind: one request as the upstream sees it
            status, body, headers = await chat(http, gw.url, "east/mini", [{"role": "user", "content": f"use {key}"}])
            assert status == 200, body
            answers.append((headers["x-localrouter-cache"], body["choices"][0]["message"]["content"]))
        assert answers == [("miss", "you said: use [REDACTED:AWS Access Key]")] + [
            ("hit", "you said: use [REDACTED:AWS Access Key]")
        ]
        assert served(echo) == 1
        store = aioredis.Redis.from_url(redis_server.url)
        try:
            keys = await store.keys("*")
            stored = b"".join([*keys, *[await store.get(k) or b"" for k in keys]])
        finally:
            await store.aclose()
        assert len(keys) == 1 and b"[REDACTED:AWS Access Key]" in stored
        assert AWS_KEY.encode() not in stored and OTHER_AWS_KEY.encode() not in stored
    finally:
        await echo.stop()


async def test_an_ask_on_the_pool_once_allowed_covers_every_target_of_it(fakes, start_gateway, http):
    """The approval is for the pool: when its pick fails, the rest of the pool may serve, unasked again."""
    gw = await start_gateway(config(fakes, [{"match": "pool/gpt", "action": "ask"}]))
    fakes[0].queue(Script(status=500))  # round robin: east is the first pick
    task = asyncio.create_task(chat(http, gw.url, "pool/gpt"))
    [approval] = await waiting(http, gw.url)
    assert approval["what"] == "pool/gpt"
    assert await decide(http, gw.url, approval["id"], "allow_once") == 200
    status, body, headers = await asyncio.wait_for(task, 10)
    assert status == 200 and headers["x-localrouter-model"] == "west/gpt-4o", body
    assert [served(f) for f in fakes] == [1, 1]
