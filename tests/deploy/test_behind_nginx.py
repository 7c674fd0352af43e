"""The gateway behind deploy/nginx.conf (real nginx): streams unbuffered, many streams, big bodies,
OpenAI-shaped errors, and the client address and request id passed on."""

from __future__ import annotations

import asyncio
import io
import json
import time

import aiohttp
import pytest

from tests.conftest import ALICE, bearer, sse_events, standard_config
from tests.fakes.openai_upstream import Script
from tests.nginxserver import Nginx

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def stack(upstreams, start_gateway, tmp_path):
    data = standard_config(*upstreams, server={"host": "127.0.0.1", "port": 0, "trusted_proxies": ["127.0.0.1"]})
    gw = await start_gateway(data)
    nginx = Nginx(tmp_path, int(gw.url.rsplit(":", 1)[1]))
    check = nginx.check()
    assert check.returncode == 0, check.stderr  # the shipped file is valid nginx configuration
    nginx.start()
    yield gw, nginx, upstreams
    nginx.stop()


async def test_stream_events_arrive_while_the_upstream_is_still_streaming(stack, http):
    gw, nginx, (primary, _) = stack
    primary.queue(Script(chunks=5, chunk_delay=0.4))
    started = time.monotonic()
    arrivals = []
    async with http.post(nginx.url + "/v1/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        async for line in resp.content:
            if line.startswith(b"data: "):
                arrivals.append(time.monotonic() - started)
    # the first event came through nginx long before the upstream's last (5 x 0.4 s)
    assert arrivals[0] < 1.0 and arrivals[-1] - arrivals[0] > 1.5


async def test_200_concurrent_streams_through_nginx_all_complete(stack):
    gw, nginx, (primary, _) = stack
    primary.default = Script(chunks=10, chunk_delay=0.05)

    async def one(http: aiohttp.ClientSession) -> bool:
        async with http.post(
            nginx.url + "/v1/chat/completions", json={**CHAT, "stream": True}, headers=bearer()
        ) as resp:
            events = await sse_events(resp)
            return resp.status == 200 and events[-1] == "[DONE]" and not any("error" in e for e in events[:-1])

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        results = await asyncio.gather(*(one(http) for _ in range(200)))
    assert all(results) and len(results) == 200


async def test_a_1_mb_body_passes_and_a_bigger_one_is_refused(stack, http):
    gw, nginx, (primary, _) = stack
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 1_000_000}]}
    async with http.post(nginx.url + "/v1/chat/completions", json=big, headers=bearer()) as resp:
        assert resp.status == 200
    assert len(primary.received[-1].body["messages"][0]["content"]) == 1_000_000
    huge = json.dumps({**CHAT, "messages": [{"role": "user", "content": "x" * (17 * 1024 * 1024)}]}).encode()
    async with http.post(
        nginx.url + "/v1/chat/completions",
        data=io.BytesIO(huge),
        headers={**bearer(), "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 413  # nginx's client_max_body_size, the same limit as the gateway's
        assert (await resp.json(content_type=None))["error"]["type"] == "invalid_request_error"


async def test_errors_keep_the_openai_shape_through_nginx(stack, http):
    gw, nginx, _ = stack
    for headers, body, status in (
        (bearer("lr-wrong-0123456789abcdef"), CHAT, 401),
        (bearer(), {**CHAT, "model": "openai/nope"}, 404),
        (bearer(), {"model": "openai/gpt-4o-mini"}, 400),
    ):
        async with http.post(nginx.url + "/v1/chat/completions", json=body, headers=headers) as resp:
            assert resp.status == status
            doc = await resp.json()
            assert set(doc["error"]) == {"message", "type", "param", "code"}


async def test_gateway_down_is_an_openai_shaped_503(stack, http):
    gw, nginx, _ = stack
    await gw.runner.cleanup()
    async with http.post(nginx.url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.status == 503
        assert (await resp.json(content_type=None))["error"]["code"] == "gateway_unavailable"


async def test_client_address_and_request_id_are_passed_on(stack, http):
    gw, nginx, _ = stack
    async with http.post(
        nginx.url + "/v1/chat/completions", json=CHAT, headers={**bearer(), "X-Request-ID": "caller-id-42"}
    ) as resp:
        assert resp.status == 200 and resp.headers["X-Request-ID"] == "caller-id-42"
    async with http.post(nginx.url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
        generated = resp.headers["X-Request-ID"]
    assert len(generated) == 32  # nginx's $request_id, kept by the gateway (nginx is a trusted proxy)
    await asyncio.sleep(0.4)
    lines = {line["request_id"]: line for line in gw.access.lines}
    assert lines["caller-id-42"]["remote"] == "127.0.0.1" and lines[generated]["client"] == "alice"


async def test_the_sdk_streams_through_nginx(stack):
    gw, nginx, _ = stack
    from openai import AsyncOpenAI

    async with AsyncOpenAI(base_url=nginx.url + "/v1", api_key=ALICE, max_retries=0) as sdk:
        stream = await sdk.chat.completions.create(**CHAT, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "w0 w1 w2 "
