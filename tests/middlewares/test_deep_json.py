"""JSON nested deeply, from a client or an upstream: a 2xx or a 400 (from an upstream: a fallback),
never a 500, on every endpoint, streams and translated providers included."""

from __future__ import annotations

import json

import pytest

from gateway.jsonx import MAX_DEPTH
from tests.conftest import bearer, sse_events
from tests.fakes.openai_upstream import Script
from tests.providers.test_contract import USER, config

DEPTHS = [100, MAX_DEPTH - 1, MAX_DEPTH, 300, 900, 1000, 1023, 1024, 1025, 1100, 5000]
MESSAGES = [{"role": "user", "content": "hi"}]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def body_with(extra: str, **fields: object) -> bytes:
    """A request body whose ``x`` field holds ``extra`` (JSON text): one level deeper than ``extra``."""
    return json.dumps(fields).encode()[:-1] + b', "x": ' + extra.encode() + b"}"


def assert_error(doc: dict) -> None:
    assert set(doc["error"]) == {"message", "type", "param", "code"}


REQUESTS = {
    "chat": ("/v1/chat/completions", {"model": "openai/gpt-4o-mini", "messages": MESSAGES}),
    "chat-stream": ("/v1/chat/completions", {"model": "openai/gpt-4o-mini", "messages": MESSAGES, "stream": True}),
    "completions": ("/v1/completions", {"model": "openai/gpt-4o-mini", "prompt": "hi"}),
    "completions-stream": ("/v1/completions", {"model": "openai/gpt-4o-mini", "prompt": "hi", "stream": True}),
    "embeddings": ("/v1/embeddings", {"model": "openai/text-embedding-3-small", "input": "hi"}),
}


@pytest.mark.parametrize("depth", DEPTHS)
async def test_a_deep_request_is_served_or_refused_never_a_500(gw, http, depth):
    for name, (path, fields) in REQUESTS.items():
        async with http.post(
            gw.url + path,
            data=body_with(nested(depth), **fields),
            headers={**bearer(), "Content-Type": "application/json"},
        ) as resp:
            if depth + 1 <= MAX_DEPTH:  # the body itself is one level
                assert resp.status == 200, (name, await resp.text())
                await resp.read()
                continue
            assert resp.status == 400, (name, depth, await resp.text())
            doc = await resp.json()
        assert_error(doc)
        if depth < 1024:  # deeper still, orjson itself refuses to parse it: "could not parse"
            assert f"nested more than {MAX_DEPTH} levels" in doc["error"]["message"]


@pytest.mark.parametrize("depth", [300, 900, 1000, 1024, 1100])
@pytest.mark.parametrize("kind", ["anthropic", "gemini", "ollama"])
async def test_deep_tool_arguments_sent_to_a_translated_provider_are_a_400(
    kind, depth, wire_fake, fake_upstream, start_gateway, http
):
    """A tool call's arguments are JSON text the adapter parses to send as an object: the one place a
    client's JSON is read again past the body."""
    fake = await wire_fake(kind)
    gw = await start_gateway(config(kind, fake, await fake_upstream("backup")))
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": nested(depth)}}
    messages = [
        USER,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    for stream in (False, True):
        async with http.post(
            gw.url + "/v1/chat/completions",
            headers=bearer(),
            json={"model": "up/m", "messages": messages, "stream": stream},
        ) as resp:
            assert resp.status == 400, await resp.text()
            assert_error(await resp.json())


CHOICE = b'"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]'


@pytest.mark.parametrize("depth", [300, 900, 1000, 1024])
async def test_a_deep_upstream_answer_is_invalid_and_falls_back(gw, http, upstreams, depth):
    primary, _ = upstreams
    answer = b'{"id": "c", "object": "chat.completion", "model": "gpt-4o-mini", ' + CHOICE + b', "x": '
    primary.queue(Script(body=answer + nested(depth).encode() + b"}"))
    async with http.post(
        gw.url + "/v1/chat/completions", headers=bearer(), json={"model": "openai/gpt-4o-mini", "messages": MESSAGES}
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["model"] == "backup/gpt-4o-mini"


@pytest.mark.parametrize("depth", [300, 900, 1000, 1024])
async def test_a_deep_upstream_stream_chunk_is_invalid_and_falls_back(gw, http, upstreams, depth):
    primary, _ = upstreams
    chunk = (
        b'{"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "a"}}],'
        b' "x": ' + nested(depth).encode() + b"}"
    )
    primary.queue(Script(raw_stream=[b"data: " + chunk + b"\n\n", b"data: [DONE]\n\n"]))
    async with http.post(
        gw.url + "/v1/chat/completions",
        headers=bearer(),
        json={"model": "openai/gpt-4o-mini", "messages": MESSAGES, "stream": True},
    ) as resp:
        assert resp.status == 200
        events = await sse_events(resp)
    assert events[-1] == "[DONE]" and not any("error" in e for e in events[:-1])
    assert {e["model"] for e in events[:-1]} == {"backup/gpt-4o-mini"}
