"""The response cache end to end: the gateway on a real socket in front of fake upstreams that count their
calls, driven by the openai and anthropic SDKs and plain HTTP."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import anthropic
import pytest
from openai import AsyncOpenAI
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ALICE, BOB, Gateway, bearer, standard_config
from tests.fakes.openai_upstream import USAGE, FakeOpenAI, Script
from tests.fakes.wire import KEY, WireFake

MODEL = "openai/gpt-4o-mini"
HI = [{"role": "user", "content": "hi"}]
CHAT = {"model": MODEL, "messages": HI}
PRICE = {"input_per_1m": 1.0, "output_per_1m": 2.0}
COST = (USAGE["prompt_tokens"] * 1.0 + USAGE["completion_tokens"] * 2.0) / 1e6
Upstreams = tuple[FakeOpenAI, FakeOpenAI]
Start = Callable[..., Awaitable[Gateway]]


def cached_config(upstreams: Upstreams, strategy_cache: Any = True, **top: Any) -> dict[str, Any]:
    """The standard config with a price, native Responses on the primary, and ``strategy_cache`` as both
    strategies' ``cache``; ``top``: top-level sections (``cache``)."""
    data = copy.deepcopy(standard_config(*upstreams))
    primary = data["providers"][0]
    primary["prices"] = {"gpt-4o-mini": PRICE}
    primary["endpoints"] = ["chat", "completions", "embeddings", "responses"]
    for strategy in data["strategies"]:
        strategy["cache"] = strategy_cache
    data.update(top)
    return data


def calls(fake: FakeOpenAI, path: str = "/v1/chat/completions") -> int:
    return sum(1 for r in fake.received if r.path == path)


async def post(
    http: aiohttp.ClientSession, gw: Gateway, path: str, body: dict[str, Any], key: str = ALICE, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    async with http.post(gw.url + path, json=body, headers={**bearer(key), **headers}) as resp:
        return resp.status, dict(resp.headers), await resp.read()


SDK_CALLS: dict[str, tuple[str, Callable[[AsyncOpenAI], Awaitable[Any]]]] = {
    "chat": ("/v1/chat/completions", lambda c: c.chat.completions.with_raw_response.create(model=MODEL, messages=HI)),
    "completions": ("/v1/completions", lambda c: c.completions.with_raw_response.create(model=MODEL, prompt="hi")),
    "embeddings": (
        "/v1/embeddings",
        lambda c: c.embeddings.with_raw_response.create(model="openai/text-embedding-3-small", input=["a", "b"]),
    ),
    "responses": (
        "/v1/responses",
        lambda c: c.responses.with_raw_response.create(model=MODEL, input="hi", store=False),
    ),
}


@pytest.mark.parametrize("endpoint", SDK_CALLS)
async def test_each_openai_endpoint_misses_then_hits(endpoint: str, upstreams: Upstreams, start_gateway: Start) -> None:
    gw = await start_gateway(cached_config(upstreams))
    path, call = SDK_CALLS[endpoint]
    sdk = gw.sdk()
    first = await call(sdk)
    assert first.headers["x-localrouter-cache"] == "miss"
    assert calls(upstreams[0], path) == 1
    again = await call(sdk)
    assert again.headers["x-localrouter-cache"] == "hit"
    assert again.headers["x-localrouter-attempts"] == "0"
    assert again.headers["x-localrouter-model"] == first.headers["x-localrouter-model"]
    assert calls(upstreams[0], path) == 1  # no upstream call
    assert again.parse().model_dump() == first.parse().model_dump()
    await sdk.close()


async def test_a_stored_or_continued_response_is_never_cached(upstreams: Upstreams, start_gateway: Start) -> None:
    """Its answer depends on the server's state: a new stored id, or the stored conversation."""
    gw = await start_gateway(cached_config(upstreams))
    sdk = gw.sdk()
    first = await sdk.responses.with_raw_response.create(model=MODEL, input="hi")  # store defaults to true
    again = await sdk.responses.with_raw_response.create(model=MODEL, input="hi")
    assert [first.headers["x-localrouter-cache"], again.headers["x-localrouter-cache"]] == ["miss", "miss"]
    first_id = first.parse().id
    assert again.parse().id != first_id
    for _ in range(2):
        await sdk.responses.create(model=MODEL, input="and?", previous_response_id=first_id, store=False)
    assert calls(upstreams[0], "/v1/responses") == 4
    await sdk.close()


@pytest.fixture
async def anthropic_stack(
    wire_fake: Callable[..., Awaitable[WireFake]], upstreams: Upstreams, start_gateway: Start
) -> tuple[Gateway, WireFake]:
    fake = await wire_fake("anthropic", "claude-up")
    data = cached_config(upstreams)
    data["providers"].append(
        {"name": "anthropic", "type": "anthropic", "base_url": fake.base_url, "api_key": KEY, "models": ["claude"]}
    )
    data["strategies"][0]["allow"].append("anthropic/*")
    return await start_gateway(data), fake


@pytest.mark.parametrize("model", ["anthropic/claude", MODEL])  # natively, and translated to chat
async def test_messages_miss_then_hit(model: str, anthropic_stack: tuple[Gateway, WireFake], upstreams) -> None:
    gw, fake = anthropic_stack
    client = anthropic.AsyncAnthropic(base_url=gw.url, api_key=ALICE, max_retries=0, timeout=20)
    ask = {"model": model, "max_tokens": 64, "messages": HI}
    first = await client.messages.with_raw_response.create(**ask)
    again = await client.messages.with_raw_response.create(**ask)
    assert [first.headers["x-localrouter-cache"], again.headers["x-localrouter-cache"]] == ["miss", "hit"]
    assert (await again.parse()).model_dump() == (await first.parse()).model_dump()
    upstream_calls = len(fake.raw) if model.startswith("anthropic/") else calls(upstreams[0])
    assert upstream_calls == 1
    await client.close()


STREAMS = {
    "chat": ("/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}}),
    "completions": ("/v1/completions", {"model": MODEL, "prompt": "hi", "stream": True}),
    "responses": ("/v1/responses", {"model": MODEL, "input": "hi", "store": False, "stream": True}),
    "messages": ("/v1/messages", {"model": MODEL, "max_tokens": 64, "messages": HI, "stream": True}),
}


@pytest.mark.parametrize("endpoint", STREAMS)
async def test_a_stream_is_replayed_as_it_was_sent(endpoint: str, upstreams: Upstreams, start_gateway: Start, http):
    gw = await start_gateway(cached_config(upstreams))
    path, body = STREAMS[endpoint]
    status, headers, sent = await post(http, gw, path, body)
    assert (status, headers["x-localrouter-cache"]) == (200, "miss")
    status, again_headers, replayed = await post(http, gw, path, body)
    assert (status, again_headers["x-localrouter-cache"]) == (200, "hit")
    assert replayed == sent  # the same events, its end included
    assert again_headers["Content-Type"] == headers["Content-Type"] == "text/event-stream"
    upstream = "/v1/responses" if endpoint == "responses" else "/v1/completions" if endpoint == "completions" else ""
    assert calls(upstreams[0], upstream or "/v1/chat/completions") == 1
    if endpoint != "responses" and endpoint != "messages":
        assert replayed.endswith(b"data: [DONE]\n\n")


async def test_a_streamed_hit_reads_the_same_through_the_sdk(upstreams: Upstreams, start_gateway: Start) -> None:
    gw = await start_gateway(cached_config(upstreams))
    sdk = gw.sdk()

    async def read() -> tuple[str, str | None, Any]:
        stream = await sdk.chat.completions.create(
            model=MODEL, messages=HI, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return text, chunks[0].choices[0].delta.role, chunks[-1].usage

    first, again = await read(), await read()
    assert first == again and first[0] == "w0 w1 w2 " and first[1] == "assistant"
    assert again[2].total_tokens == USAGE["total_tokens"]
    assert calls(upstreams[0]) == 1
    await sdk.close()


async def test_streams_and_answers_never_answer_each_other(upstreams: Upstreams, start_gateway: Start, http) -> None:
    gw = await start_gateway(cached_config(upstreams))
    path = "/v1/chat/completions"
    results = [await post(http, gw, path, body) for body in (CHAT, {**CHAT, "stream": True}, {**CHAT, "stream": False})]
    assert [h["x-localrouter-cache"] for _, h, _ in results] == ["miss", "miss", "hit"]
    assert results[2][2] == results[0][2] and results[1][1]["Content-Type"] == "text/event-stream"
    assert calls(upstreams[0]) == 2


async def test_key_order_does_not_matter_but_every_value_does(upstreams: Upstreams, start_gateway: Start, http):
    data = cached_config(upstreams)
    data["strategies"][0]["aliases"] = {"mini": MODEL}
    gw = await start_gateway(data)
    path = "/v1/chat/completions"
    await post(http, gw, path, {**CHAT, "temperature": 0.5})
    reordered = {"temperature": 0.5, "messages": HI, "model": MODEL}
    assert (await post(http, gw, path, reordered))[1]["x-localrouter-cache"] == "hit"
    aliased = {**CHAT, "model": "mini", "temperature": 0.5}  # the request its upstream sees is the same
    assert (await post(http, gw, path, aliased))[1]["x-localrouter-cache"] == "hit"
    assert (await post(http, gw, path, {**CHAT, "temperature": 0.6}))[1]["x-localrouter-cache"] == "miss"
    assert calls(upstreams[0]) == 2


def fresh(text: str) -> Script:
    """An upstream answer saying ``text``."""
    message = {"role": "assistant", "content": text}
    return Script(
        body={
            "id": "cmpl-fresh",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": USAGE,
        }
    )


async def text_of(http, gw: Gateway, **headers: str) -> tuple[str, str]:
    async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers={**bearer(), **headers}) as resp:
        doc = await resp.json()
        return resp.headers["x-localrouter-cache"], doc["choices"][0]["message"]["content"]


async def test_no_cache_asks_the_upstream_and_keeps_its_answer_no_store_does_neither(
    upstreams: Upstreams, start_gateway: Start, http
) -> None:
    gw = await start_gateway(cached_config(upstreams))
    primary = upstreams[0]
    primary.queue(fresh("one"), fresh("two"), fresh("three"))
    assert await text_of(http, gw) == ("miss", "one")
    assert await text_of(http, gw, **{"Cache-Control": "no-cache"}) == ("miss", "two")
    assert await text_of(http, gw) == ("hit", "two")  # the fresh answer replaced the entry
    assert await text_of(http, gw, **{"Cache-Control": "max-age=0, No-Store"}) == ("miss", "three")
    assert await text_of(http, gw) == ("hit", "two")  # not kept
    assert calls(primary) == 3


async def test_pragma_no_cache_and_max_age_0_ask_the_upstream_as_no_cache_does(
    upstreams: Upstreams, start_gateway: Start, http
) -> None:
    """RFC 9111: ``max-age=0`` accepts no stored answer, and ``Pragma: no-cache`` is ``no-cache`` for a request
    without ``Cache-Control`` (with one, ``Cache-Control`` alone counts)."""
    gw = await start_gateway(cached_config(upstreams))
    primary = upstreams[0]
    primary.queue(fresh("one"), fresh("two"), fresh("three"))
    assert await text_of(http, gw) == ("miss", "one")
    assert await text_of(http, gw, Pragma="no-cache") == ("miss", "two")
    assert await text_of(http, gw) == ("hit", "two")  # the fresh answer replaced the entry
    assert await text_of(http, gw, **{"Cache-Control": "max-age=0"}) == ("miss", "three")
    assert await text_of(http, gw, **{"Cache-Control": "max-age=60"}, Pragma="no-cache") == ("hit", "three")
    assert await text_of(http, gw, **{"Cache-Control": 'max-age="0"'}) == ("miss", "Hello from primary")
    assert calls(primary) == 4


async def test_an_entry_expires_after_its_strategys_ttl(upstreams: Upstreams, start_gateway: Start, http) -> None:
    gw = await start_gateway(cached_config(upstreams, strategy_cache={"ttl": 1}))
    path = "/v1/chat/completions"
    assert (await post(http, gw, path, CHAT))[1]["x-localrouter-cache"] == "miss"
    assert (await post(http, gw, path, CHAT))[1]["x-localrouter-cache"] == "hit"
    await asyncio.sleep(1.2)
    assert (await post(http, gw, path, CHAT))[1]["x-localrouter-cache"] == "miss"
    assert calls(upstreams[0]) == 2


async def test_strategies_never_share_entries(upstreams: Upstreams, start_gateway: Start, http) -> None:
    gw = await start_gateway(cached_config(upstreams))
    body = {**CHAT, "model": "backup/gpt-4o-mini"}  # both strategies allow it
    seen = [(await post(http, gw, "/v1/chat/completions", body, key))[1]["x-localrouter-cache"] for key in (ALICE, BOB)]
    seen += [
        (await post(http, gw, "/v1/chat/completions", body, key))[1]["x-localrouter-cache"] for key in (ALICE, BOB)
    ]
    assert seen == ["miss", "miss", "hit", "hit"]
    assert calls(upstreams[1]) == 2


async def test_a_strategy_without_cache_says_nothing_and_always_asks(upstreams: Upstreams, start_gateway: Start, http):
    data = cached_config(upstreams)
    del data["strategies"][0]["cache"]
    gw = await start_gateway(data)
    for _ in range(2):
        status, headers, _ = await post(http, gw, "/v1/chat/completions", CHAT)
        assert status == 200 and "x-localrouter-cache" not in headers
    assert calls(upstreams[0]) == 2


async def cache_bytes(http, gw: Gateway) -> float:
    async with http.get(gw.url + "/metrics") as resp:
        families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
    return families["localrouter_cache_bytes"].samples[0].value


async def test_memory_stays_under_max_bytes_evicting_the_least_recently_used(
    upstreams: Upstreams, start_gateway: Start, http
) -> None:
    def ask(word: str) -> dict[str, Any]:
        return {**CHAT, "messages": [{"role": "user", "content": word}]}

    path = "/v1/chat/completions"
    probe = await start_gateway(cached_config(upstreams))
    await post(http, probe, path, ask("a"))
    one = await cache_bytes(http, probe)  # the size of one entry; the others are the same size
    assert one > 0
    gw = await start_gateway(cached_config(upstreams, cache={"max_bytes": int(one * 2.5)}))
    for word in ("a", "b", "a", "c"):  # a is used again after b: b is the least recently used when c comes
        await post(http, gw, path, ask(word))
    assert await cache_bytes(http, gw) == one * 2
    results = {w: (await post(http, gw, path, ask(w)))[1]["x-localrouter-cache"] for w in ("a", "c", "b")}
    assert results == {"a": "hit", "c": "hit", "b": "miss"}
    assert await cache_bytes(http, gw) <= one * 2.5


async def test_failed_refused_or_cut_answers_are_not_kept(upstreams: Upstreams, start_gateway: Start, http) -> None:
    gw = await start_gateway(cached_config(upstreams))
    primary, path = upstreams[0], "/v1/chat/completions"
    primary.queue(Script(status=400))  # refused by the upstream
    assert (await post(http, gw, path, CHAT))[:2][0] == 400
    assert (await post(http, gw, path, CHAT))[1]["x-localrouter-cache"] == "miss"
    stream = {**CHAT, "stream": True}
    primary.queue(Script(cut_after=2))  # cut after its first byte went out: an error event ends it
    status, headers, sent = await post(http, gw, path, stream)
    assert status == 200 and b"stream_interrupted" in sent and headers["x-localrouter-cache"] == "miss"
    primary.queue(Script(no_done=True))  # ended without its end: not clean either
    status, _, sent = await post(http, gw, path, stream)
    assert b"stream_interrupted" in sent
    status, headers, sent = await post(http, gw, path, stream)  # whole: kept from now on
    assert headers["x-localrouter-cache"] == "miss" and sent.endswith(b"data: [DONE]\n\n")
    assert (await post(http, gw, path, stream))[1]["x-localrouter-cache"] == "hit"
    assert calls(primary) == 5


async def test_a_hit_is_recorded_as_cached_with_cost_zero_and_the_cost_it_saved(
    upstreams: Upstreams, start_gateway: Start, http
) -> None:
    gw = await start_gateway(cached_config(upstreams))
    records = []
    for _ in range(2):
        status, headers, _ = await post(http, gw, "/v1/chat/completions", CHAT)
        async with http.get(gw.url + "/generation", params={"id": headers["X-Request-ID"]}, headers=bearer()) as resp:
            records.append(await resp.json())
    miss, hit = records
    assert (miss["cached"], miss["cost_usd"], miss["saved_usd"]) == (False, pytest.approx(COST), None)
    assert (hit["cached"], hit["cost_usd"], hit["saved_usd"]) == (True, 0.0, pytest.approx(COST))
    assert hit["total_tokens"] == miss["total_tokens"] == USAGE["total_tokens"]
    assert (hit["model"], hit["provider"], hit["attempts"]) == (MODEL, "openai", 0)
    await asyncio.sleep(0.3)  # the access log is written in batches
    assert [line.get("cache") for line in gw.access.lines if line["endpoint"] == "chat"] == ["miss", "hit"]


async def test_a_hit_counts_as_a_request_but_no_tokens(upstreams: Upstreams, start_gateway: Start, http) -> None:
    data = cached_config(upstreams)
    data["strategies"][0]["rate_limits"] = [{"requests": 100, "per": "minute"}, {"total_tokens": 1000, "per": "minute"}]
    gw = await start_gateway(data)
    seen = []
    for _ in range(3):
        _, headers, _ = await post(http, gw, "/v1/chat/completions", CHAT)
        seen.append((headers["x-ratelimit-remaining-requests"], headers["x-ratelimit-remaining-tokens"]))
    # the headers are read as a request is admitted: the third shows the first two
    assert seen == [("99", "1000"), ("98", "988"), ("97", "988")]


async def test_metrics_count_hits_and_misses(upstreams: Upstreams, start_gateway: Start, http) -> None:
    gw = await start_gateway(cached_config(upstreams))
    for _ in range(3):
        await post(http, gw, "/v1/chat/completions", CHAT)
    async with http.get(gw.url + "/metrics") as resp:
        families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
    lookups = {s.labels["result"]: s.value for s in families["localrouter_cache_lookups"].samples}
    assert lookups == {"hit": 2, "miss": 1}
    assert families["localrouter_cache_bytes"].samples[0].value > 0


async def test_a_stream_its_client_left_is_not_kept(upstreams: Upstreams, start_gateway: Start, http) -> None:
    gw = await start_gateway(cached_config(upstreams))
    primary, path = upstreams[0], "/v1/chat/completions"
    primary.queue(Script(chunks=6, chunk_delay=0.1))
    async with http.post(gw.url + path, json={**CHAT, "stream": True}, headers=bearer()) as resp:
        await resp.content.readuntil(b"\n\n")  # the first event, then the client goes
        resp.close()
    await asyncio.sleep(1.0)  # the upstream's stream would have ended by now
    assert (await post(http, gw, path, {**CHAT, "stream": True}))[1]["x-localrouter-cache"] == "miss"
    assert calls(primary) == 2


async def test_a_pool_hits_whichever_target_its_turn_falls_on(upstreams: Upstreams, start_gateway: Start, http) -> None:
    """A pool orders its targets anew for each request: its entries must not depend on that order."""
    data = cached_config(upstreams)
    targets = ["openai/gpt-4o-mini", "backup/gpt-4o-mini"]
    data["pools"] = [{"name": "mini", "targets": targets, "balance": "round_robin"}]
    data["strategies"][0]["allow"] = [*data["strategies"][0]["allow"], "pool/mini"]
    gw = await start_gateway(data)
    body = {**CHAT, "model": "pool/mini"}
    seen = [(await post(http, gw, "/v1/chat/completions", body))[1]["x-localrouter-cache"] for _ in range(4)]
    assert seen == ["miss", "hit", "hit", "hit"]
    assert calls(upstreams[0]) + calls(upstreams[1]) == 1
