"""An upstream's own words on the way to the client: its credential never rides along, and an answer
of the wrong shape is an invalid answer (502, fallback) while a bug of the gateway's own stays a bug."""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from gateway import config as gwconfig
from providers import registry
from providers.base import UpstreamInvalid
from providers.native import StreamTranslator, TranslatingProvider
from tests.conftest import bearer, sse_events
from tests.fakes.wire import KEY
from tests.providers.test_contract import TYPES, USER, config

TRANSLATED = ["anthropic", "gemini", "ollama"]
# the key echoed as a proxy might ("bad header ..."), and once where a cut at 200 characters would split it
ECHOES = [f"invalid header 'Authorization: Bearer {KEY}'", "x" * 190 + f" {KEY} " + "y" * 50]


async def alone(kind, wire_fake, fake_upstream, start_gateway):
    """A gateway whose only target is a ``kind`` upstream (no fallback: its error reaches the client)."""
    fake = await wire_fake(kind)
    data = config(kind, fake, await fake_upstream("backup"))
    data["strategies"][0]["fallbacks"] = {}
    return fake, await start_gateway(data)


def assert_no_key(*texts: str) -> None:
    for text in texts:
        assert KEY[:10] not in text, text  # not even the start of it


@pytest.mark.parametrize("echo", ECHOES, ids=["short", "at-the-cut"])
@pytest.mark.parametrize("kind", TYPES)
async def test_a_stream_error_never_carries_the_upstreams_key(
    kind, echo, wire_fake, fake_upstream, start_gateway, http, caplog
):
    caplog.set_level(logging.DEBUG)
    fake, gw = await alone(kind, wire_fake, fake_upstream, start_gateway)
    request = {"model": "up/m", "messages": [USER], "stream": True}
    fake.fail_stream(0, echo)  # the first event: the client gets a 503 naming why
    async with http.post(gw.url + "/v1/chat/completions", json=request, headers=bearer()) as resp:
        assert resp.status == 503
        first = await resp.text()
    assert "error in stream" in first and "[redacted]" in first
    fake.fail_stream(2, echo)  # mid-stream: the final error event
    async with http.post(gw.url + "/v1/chat/completions", json=request, headers=bearer()) as resp:
        assert resp.status == 200
        events = await sse_events(resp)
    error = events[-2]["error"]
    assert error["code"] == "stream_interrupted" and "[redacted]" in error["message"]
    await asyncio.sleep(0.4)  # the access log's batch is written
    assert "failed mid-way" in caplog.text
    assert_no_key(first, json.dumps(events), caplog.text, json.dumps(gw.access.lines))


# --- malformed answers: narrowly an invalid answer ------------------------------------------------

# answers of the right JSON but the wrong shape: the parts the format requires missing or mistyped
MALFORMED: dict[str, list[Any]] = {
    "anthropic": [
        [],
        {"content": "text"},
        {"content": [{"type": "text", "text": 5}]},
        {"content": [7]},
        {"content": [{"type": "tool_use", "name": "f"}]},
    ],
    "gemini": [
        [],
        {"candidates": {"0": 1}},
        {"candidates": ["x"]},
        {"candidates": [{"content": {"parts": [{"text": 5}]}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]},
    ],
    "ollama": [[], {"message": "hi"}, {"message": {"content": 5}}, {"message": {"tool_calls": [{"function": 1}]}}],
}
# optional parts of the wrong type are left out, as if absent: the answer is served
TOLERATED: dict[str, list[Any]] = {
    "anthropic": [{"content": [], "stop_reason": ["end_turn"], "usage": "many"}],
    "gemini": [
        {"candidates": [{"content": {"parts": []}, "finishReason": {"a": 1}}]},
        {"candidates": [{"content": {"parts": []}}], "usageMetadata": {"candidatesTokenCount": "5"}},
    ],
    "ollama": [{"message": {"content": ""}, "done_reason": ["stop"], "eval_count": "5"}],
}


@pytest.mark.parametrize("kind", TRANSLATED)
async def test_a_malformed_answer_is_invalid_and_falls_back(kind, wire_fake, fake_upstream, start_gateway, http):
    """Served raw by a plain aiohttp app in the upstream's place: each malformed answer falls back to the
    backup, each tolerated one is served; never a 500 (which would mean the adapter crashed on it)."""
    from aiohttp import web

    answers = [*MALFORMED[kind], *TOLERATED[kind]]

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(answers.pop(0))

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        fake = await wire_fake(kind)
        data = config(kind, fake, await fake_upstream("backup"))
        data["providers"][0]["base_url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        gw = await start_gateway(data)
        for i in range(len(MALFORMED[kind]) + len(TOLERATED[kind])):
            async with http.post(
                gw.url + "/v1/chat/completions", json={"model": "up/m", "messages": [USER]}, headers=bearer()
            ) as resp:
                assert resp.status == 200, (i, await resp.text())
                served = (await resp.json())["model"]
            assert served == ("backup/gpt-4o-mini" if i < len(MALFORMED[kind]) else "up/m"), i
    finally:
        await runner.cleanup()


BAD_EVENTS: dict[str, list[Any]] = {  # stream events of the right JSON but the wrong shape, mid-stream
    "anthropic": [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 5}},
        {"type": "content_block_delta", "index": 9, "delta": {"type": "input_json_delta"}},
        {"type": "content_block_start", "index": [0], "content_block": {"type": "tool_use"}},
        [1],
        {"type": 5},
    ],
    "gemini": [
        {"candidates": [{"content": {"parts": [{"text": ["a"]}]}}]},
        {"candidates": "abc"},
        {"candidates": [{"content": {"parts": [{"functionCall": "f"}]}}]},
        [2],
    ],
    "ollama": [
        {"message": {"content": 5}},
        {"message": {"tool_calls": [{"function": {"name": 1}}]}},
        {"message": "x"},
        [3],
    ],
}


def _stream_body(kind: str, bad: Any) -> tuple[str, bytes]:
    """A stream whose first event is good and whose second is ``bad``: (content type, body)."""
    if kind == "ollama":
        first = {"message": {"role": "assistant", "content": "Hi"}, "done": False}
        return "application/x-ndjson", b"".join(json.dumps(e).encode() + b"\n" for e in (first, bad))
    first = (
        {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 1}}}
        if kind == "anthropic"
        else {"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}
    )
    return "text/event-stream", b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in (first, bad))


@pytest.mark.parametrize("kind", TRANSLATED)
async def test_a_malformed_stream_event_is_an_interrupted_stream(kind, wire_fake, fake_upstream, start_gateway, http):
    from aiohttp import web

    events = list(BAD_EVENTS[kind])

    async def stream(request: web.Request) -> web.StreamResponse:
        ctype, body = _stream_body(kind, events.pop(0))
        resp = web.StreamResponse(headers={"Content-Type": ctype})
        await resp.prepare(request)
        await resp.write(body)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", stream)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        fake = await wire_fake(kind)
        data = config(kind, fake, await fake_upstream("backup"))
        data["providers"][0]["base_url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        gw = await start_gateway(data)
        for i in range(len(BAD_EVENTS[kind])):
            async with http.post(
                gw.url + "/v1/chat/completions",
                headers=bearer(),
                json={"model": "up/m", "messages": [USER], "stream": True},
            ) as resp:
                assert resp.status == 200
                got = await sse_events(resp)
            assert got[-1] == "[DONE]", i
            assert got[-2]["error"]["code"] == "stream_interrupted", (i, got[-2])
            assert "malformed" in got[-2]["error"]["message"] or "unexpected" in got[-2]["error"]["message"], got[-2]
    finally:
        await runner.cleanup()


# --- the gateway's own bug is not an invalid answer -------------------------------------------------


class _Buggy(TranslatingProvider):
    """An adapter with a bug of its own: it reads a key its own request never set. Its requests go to a
    real Ollama-format fake; what it proves is that the frame around every translating adapter lets such
    a bug through instead of reporting it as an invalid upstream answer (which would fall back)."""

    capabilities = frozenset({"chat"})
    stream_format = "ndjson"

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    def url(self, endpoint: str, model: str, stream: bool, body: dict[str, Any]) -> str:
        return self.config.base_url + "/api/chat"

    async def list_models(self):  # type: ignore[no-untyped-def]
        return []

    def payload(self, endpoint: str, body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
        return {"model": model, "messages": body["messages"], "stream": stream}

    def answer(self, endpoint: str, doc: Any, model: str) -> dict[str, Any]:
        settings: dict[str, Any] = {}
        return settings["temperature"]  # the bug

    def translator(self, model: str) -> StreamTranslator:
        class Stream(StreamTranslator):
            def feed(self, event: Any) -> list[dict[str, Any]]:
                return [{}["choices"]]  # the bug

        return Stream()


def ollama_config(base_url: str) -> gwconfig.ProviderConfig:
    data = config("ollama", SimpleNamespace(base_url=base_url), SimpleNamespace(base_url="http://127.0.0.1:9/v1"))
    return gwconfig.parse(data, {}, types=registry.TYPES).providers[0]


@pytest.mark.parametrize("stream", [False, True])
async def test_an_adapters_own_bug_is_not_an_invalid_answer(wire_fake, stream):
    fake = await wire_fake("ollama")
    async with aiohttp.ClientSession() as session:
        provider = _Buggy(ollama_config(fake.base_url), session)
        body = {"model": "m", "messages": [USER]}
        with pytest.raises(KeyError):  # before: UpstreamInvalid("unexpected answer shape"), a fallback
            if stream:
                async for _ in provider.infer_stream("chat", body, "m"):
                    pass
            else:
                await provider.infer("chat", body, "m")
    assert len(fake.raw) == 1  # it really went to the upstream and back


async def test_a_malformed_answer_is_still_upstream_invalid(wire_fake):
    """The same frame, a correct adapter, a malformed answer: UpstreamInvalid, raised where it was read."""
    from providers.ollama import OllamaProvider

    async def wrong(request):
        from aiohttp import web

        return web.json_response({"message": {"content": 5}})

    from aiohttp import web

    app = web.Application()
    app.router.add_post("/api/chat", wrong)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with aiohttp.ClientSession() as session:
            provider = OllamaProvider(ollama_config(f"http://127.0.0.1:{runner.addresses[0][1]}"), session)
            with pytest.raises(UpstreamInvalid):
                await provider.infer("chat", {"messages": [USER]}, "m")
    finally:
        await runner.cleanup()
