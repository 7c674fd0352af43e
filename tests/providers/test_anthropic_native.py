"""The Anthropic adapter's native pass-through: a Messages body goes to a real (fake) Anthropic upstream
on 127.0.0.1 as the client sent it, only ``model`` replaced, with the client's version and betas and the
provider's own key; the answer and every stream event come back as Anthropic sent them, with the usage
(cache tokens included) read. The adapter is called directly: no gateway route yet."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.config import ProviderConfig, Timeouts
from gateway.config.reader import Secret
from providers.anthropic import AnthropicProvider, MessagesStream, messages_usage
from providers.base import ProviderError, UpstreamInvalid, UpstreamRejected, UpstreamUnavailable
from tests.fakes.wire import COMPLETION, KEY, PROMPT, WireFake

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
CACHE = {"cache_creation_input_tokens": 30, "cache_read_input_tokens": 200}
CLIENT = {"anthropic-version": "2023-06-01", "anthropic-beta": "interleaved-thinking-2025-05-14", "x-api-key": "lr-x"}
BODY: dict[str, Any] = {
    "model": "up/m",
    "max_tokens": 64,
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "A greeting.", "signature": "EqQBCgIYAhIM"},
                {"type": "text", "text": "Hello!"},
            ],
        },
        {"role": "user", "content": "again"},
    ],
    "top_k": 5,
}


@pytest.fixture
async def upstream(wire_fake) -> AsyncIterator[tuple[WireFake, AnthropicProvider]]:
    fake = await wire_fake("anthropic")
    config = ProviderConfig(
        name="up",
        type="anthropic",
        base_url=fake.base_url,
        api_key=Secret(KEY),
        timeouts=Timeouts(first_byte=5, idle=5),
    )
    async with aiohttp.ClientSession() as session:
        yield fake, AnthropicProvider(config, session)


def sent(fake: WireFake) -> tuple[dict[str, str], Any]:
    _, headers, body = fake.raw[-1]
    return headers, body


async def test_the_body_goes_as_sent_but_for_the_model(upstream):
    fake, provider = upstream
    fake.extra_usage = CACHE
    body = copy.deepcopy(BODY)
    answer = await provider.messages(body, "claude-sonnet-4-5", CLIENT)
    headers, seen = sent(fake)
    assert seen == {**BODY, "model": "claude-sonnet-4-5"}  # thinking, cache_control, top_k survive
    assert list(seen) == list(BODY)  # in the client's order
    assert body == BODY  # the caller's body is not changed
    assert headers["anthropic-beta"] == CLIENT["anthropic-beta"] and headers["anthropic-version"] == "2023-06-01"
    assert headers["x-api-key"] == KEY  # the provider's own key, never the client's
    assert answer["type"] == "message" and answer["id"] == "msg_1" and answer["model"] == "claude-sonnet-4-5"
    assert answer["content"] == [{"type": "text", "text": "Hello from up [system: Be brief.] (turn 2)"}]
    assert answer["usage"] == {"input_tokens": PROMPT, "output_tokens": COMPLETION, **CACHE}
    assert messages_usage(answer["usage"]) == {
        "prompt_tokens": PROMPT + 30 + 200,
        "completion_tokens": COMPLETION,
        "total_tokens": PROMPT + 30 + 200 + COMPLETION,
        **CACHE,
    }


async def test_without_the_clients_headers_the_providers_version_goes(upstream):
    fake, provider = upstream
    await provider.messages(copy.deepcopy(BODY), "m", {})
    headers, _ = sent(fake)
    assert headers["anthropic-version"] == "2023-06-01" and "anthropic-beta" not in headers


async def collect(stream: MessagesStream) -> list[list[dict[str, Any]]]:
    return [batch.chunks async for batch in stream]


async def test_the_stream_comes_back_event_by_event_with_its_usage(upstream):
    fake, provider = upstream
    fake.extra_usage = CACHE
    stream = await provider.messages_stream({**BODY, "stream": True}, "claude-sonnet-4-5", CLIENT)
    batches = await collect(stream)
    events = [e for batch in batches for e in batch]
    headers, seen = sent(fake)
    assert seen == {**BODY, "stream": True, "model": "claude-sonnet-4-5"}
    assert headers["anthropic-beta"] == CLIENT["anthropic-beta"]
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["message_start", "ping"] and kinds[-2:] == ["message_delta", "message_stop"]
    assert events[0]["message"]["model"] == "claude-sonnet-4-5"  # as Anthropic sent it: the caller renames
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == "Hello from up [system: Be brief.] (turn 2)"
    assert stream.done and stream.usage == {"input_tokens": PROMPT, "output_tokens": COMPLETION, **CACHE}
    assert len(batches) > 1  # one batch per upstream read, not the whole stream at once


async def test_a_tool_use_stream_relays_its_json_deltas(upstream):
    fake, provider = upstream
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}]
    body = {
        "model": "x",
        "max_tokens": 64,
        "stream": True,
        "tools": tools,
        "messages": [{"role": "user", "content": "w?"}],
    }
    events = [e for batch in await collect(await provider.messages_stream(body, "m", CLIENT)) for e in batch]
    assert sent(fake)[1]["tools"] == tools
    start = next(e for e in events if e["type"] == "content_block_start")
    assert start["content_block"] == {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    args = "".join(e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta")
    assert args == '{"city": "Paris"}'
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


async def test_an_error_event_first_fails_before_anything_is_relayed(upstream):
    fake, provider = upstream
    fake.fail_stream(0, f"overloaded, key {KEY}")
    stream = await provider.messages_stream({**BODY, "stream": True}, "m", CLIENT)
    with pytest.raises(UpstreamUnavailable) as caught:
        await anext(stream)
    assert (
        "overloaded" in caught.value.reason and KEY not in caught.value.reason and "[redacted]" in caught.value.reason
    )


async def test_an_error_event_mid_way_ends_the_stream_after_what_came_before(upstream):
    fake, provider = upstream
    fake.fail_stream(4, "boom")
    stream = await provider.messages_stream({**BODY, "stream": True}, "m", CLIENT)
    relayed: list[dict[str, Any]] = []
    with pytest.raises(ProviderError) as caught:
        async for batch in stream:
            relayed += batch.chunks
    assert [e["type"] for e in relayed] == ["message_start", "ping", "content_block_start", "content_block_delta"]
    assert "boom" in caught.value.reason and not stream.done


async def test_a_stream_cut_before_message_stop_is_invalid(upstream):
    fake, provider = upstream
    fake.fail_stream(3, None)
    stream = await provider.messages_stream({**BODY, "stream": True}, "m", CLIENT)
    with pytest.raises(UpstreamInvalid, match="before its end event"):
        await collect(stream)


@pytest.mark.parametrize(
    "status, failure", [(400, UpstreamRejected), (529, UpstreamUnavailable), (500, UpstreamUnavailable)]
)
async def test_error_statuses_raise_the_usual_failures(upstream, status, failure):
    fake, provider = upstream
    fake.fail(status, status)
    with pytest.raises(failure):
        await provider.messages(copy.deepcopy(BODY), "m", CLIENT)
    with pytest.raises(failure):
        await provider.messages_stream({**BODY, "stream": True}, "m", CLIENT)


async def test_count_tokens_goes_to_anthropic(upstream):
    fake, provider = upstream
    body = {"model": "up/m", "messages": BODY["messages"], "system": BODY["system"]}
    assert await provider.count_tokens(body, "claude-sonnet-4-5", CLIENT) == {"input_tokens": PROMPT}
    path, headers, seen = fake.raw[-1]
    assert path == "/v1/messages/count_tokens" and seen == {**body, "model": "claude-sonnet-4-5"}
    assert headers["anthropic-beta"] == CLIENT["anthropic-beta"]


async def recorded_upstream(provider: AnthropicProvider, body: bytes) -> web.AppRunner:
    """An upstream that answers every Messages request with ``body`` as one event stream, in one write."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/v1/messages", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    provider.config = dataclasses.replace(provider.config, base_url=f"http://127.0.0.1:{runner.addresses[0][1]}")
    return runner


async def test_a_recorded_stream_is_relayed_event_for_event(upstream):
    _, provider = upstream
    raw = (FIXTURES / "stream_tool_use.sse").read_bytes()
    runner = await recorded_upstream(provider, raw)
    try:
        stream = await provider.messages_stream({**BODY, "stream": True}, "m", CLIENT)
        relayed = [e for batch in await collect(stream) for e in batch]
    finally:
        await runner.cleanup()
    assert relayed == [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")]
    assert stream.usage == {"input_tokens": 472, "output_tokens": 89}


async def test_events_read_with_an_error_event_come_before_its_failure(upstream):
    _, provider = upstream
    recorded = (FIXTURES / "stream_text.sse").read_bytes().split(b"event: content_block_stop")[0]
    error = (FIXTURES / "stream_error_overloaded.sse").read_bytes()
    runner = await recorded_upstream(provider, recorded + error + b"\n")
    relayed: list[dict[str, Any]] = []
    try:
        stream = await provider.messages_stream({**BODY, "stream": True}, "m", CLIENT)
        with pytest.raises(UpstreamUnavailable, match="Overloaded"):
            async for batch in stream:
                relayed += batch.chunks
    finally:
        await runner.cleanup()
    assert [e["type"] for e in relayed] == ["message_start", "content_block_start", "ping"] + [
        "content_block_delta"
    ] * 2
