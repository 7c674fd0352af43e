"""An outside review of the hardening of issue 15, round two: cases the fixes' own tests did not cover."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import ALICE, bearer
from tests.fakes.openai_upstream import Script
from tests.fakes.wire import KEY


async def raw_status(url: str, request: bytes) -> bytes:
    """The status line of the answer to ``request`` sent as these very bytes (no client library's checks)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        return (await asyncio.wait_for(reader.readline(), 10)).strip()
    finally:
        writer.close()


CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("stream", [False, True])
async def test_an_upstream_400_echoing_its_key_in_param_or_code_is_scrubbed(gw, http, upstreams, stream):
    """Item 5: an upstream's 400 goes back with its param and code; the key may be echoed in those too."""
    echo = {"message": "bad header", "type": "invalid_request_error", "param": f"Bearer {KEY}", "code": f"k {KEY}"}
    upstreams[0].queue(Script(status=400, body={"error": echo}))
    async with http.post(gw.url + "/v1/chat/completions", json={**CHAT, "stream": stream}, headers=bearer()) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["param"] == "Bearer [redacted]" and error["code"] == "k [redacted]"
    await asyncio.sleep(0.4)  # the access log's batch is written
    assert KEY not in json.dumps(gw.access.lines)


@pytest.mark.parametrize("space", ["\u00a0", "\u3000", "\u2003", "\u0085"], ids=["nbsp", "ideographic", "em", "nel"])
async def test_unicode_spaces_around_a_token_or_secret_are_not_another_spelling(gw, http, space):
    """Item 9: one token, one accepted spelling; Unicode spaces are no HTTP whitespace to strip."""
    async with http.post(
        gw.url + "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "alice", "client_secret": ALICE},
    ) as resp:
        token = (await resp.json())["access_token"]
    for header, value in [
        ("Authorization", f"Bearer {token}"),
        ("Authorization", f"Bearer {ALICE}"),
        ("x-api-key", ALICE),
    ]:
        head = f"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{header}: ".encode()
        assert await raw_status(gw.url, head + value.encode() + b"\r\n\r\n") == b"HTTP/1.1 200 OK"
        for spelling in (value + space, value.replace(" ", " " + space) if " " in value else space + value):
            status = await raw_status(gw.url, head + spelling.encode() + b"\r\n\r\n")
            assert status == b"HTTP/1.1 401 Unauthorized", (header, spelling)


def event(doc: dict) -> bytes:
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


def chunk(choices: list, **extra: object) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices, **extra}


def delta(content: dict, finish: str | None = None) -> list:
    return [{"index": 0, "delta": content, "finish_reason": finish}]


# Azure OpenAI opens every chat stream with a chunk of no choices that carries its prompt filter's results
AZURE_STREAM = [
    event(chunk([], prompt_filter_results=[{"prompt_index": 0, "content_filter_results": {}}])),
    event(chunk(delta({"role": "assistant", "content": ""}))),
    event(chunk(delta({"content": "hi"}))),
    event(chunk(delta({}, "stop"))),
    event(chunk([], usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})),
    b"data: [DONE]\n\n",
]


@pytest.mark.parametrize("options", [None, {"include_usage": False}])
async def test_the_tutorial_loop_survives_a_chunk_without_choices_from_the_upstream(gw, upstreams, options):
    """Item 10: without include_usage no chunk has empty choices, whatever the upstream opens with."""
    upstreams[0].queue(Script(raw_stream=AZURE_STREAM))
    extra = {} if options is None else {"stream_options": options}
    async with gw.sdk() as sdk:
        stream = await sdk.chat.completions.create(**CHAT, stream=True, **extra)
        chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "hi"
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage.total_tokens == 2
