"""The fallback chain over scripted upstream failures, stream and non-stream."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from tests.conftest import bearer, sse_events, standard_config
from tests.fakes.openai_upstream import Script

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

FALLBACK_FAILURES = [
    Script(status=500),
    Script(status=502),
    Script(status=503),
    Script(status=429),
    Script(status=401),
    Script(status=403),
    Script(status=404),
    Script(hang=True),  # answers nothing: the first-byte timeout (2 s in the test config)
    Script(body=b"<html>not json</html>"),
    Script(body=b""),
    Script(body={"unexpected": True}),
]


def chat_answers(fake) -> int:
    return len([r for r in fake.received if r.path.endswith("/chat/completions")])


@pytest.mark.parametrize("script", FALLBACK_FAILURES, ids=lambda s: f"{s.status}-{s.hang}-{s.body!r:.12}")
async def test_non_stream_falls_back(gw, http, upstreams, script):
    primary, backup = upstreams
    primary.queue(script)
    started = time.monotonic()
    async with http.post(gw.url + "/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert doc["model"] == "backup/gpt-4o-mini"
    assert doc["choices"][0]["message"]["content"] == "Hello from backup"
    assert chat_answers(primary) == 1 and chat_answers(backup) == 1
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "script",
    FALLBACK_FAILURES + [Script(stall_after=0), Script(cut_after=0), Script(raw_stream=[b"data: [DONE]\n\n"])],
    ids=lambda s: f"{s.status}-{s.hang}-{s.body!r:.12}-{s.cut_after}-{s.stall_after}",
)
async def test_stream_falls_back_before_the_first_byte(gw, http, upstreams, script):
    primary, backup = upstreams
    primary.queue(script)
    async with http.post(gw.url + "/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
        assert resp.status == 200
        events = await sse_events(resp)
    assert events[-1] == "[DONE]"
    assert {e["model"] for e in events[:-1]} == {"backup/gpt-4o-mini"}


async def test_unreachable_target_falls_back(upstreams, start_gateway, http):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    data = standard_config(*upstreams)
    data["providers"][0]["base_url"] = f"http://127.0.0.1:{dead_port}/v1"
    gw = await start_gateway(data)
    async with http.post(gw.url + "/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.status == 200
        assert (await resp.json())["model"] == "backup/gpt-4o-mini"
    upstreams[1].queue(Script(status=500))
    async with http.post(gw.url + "/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.status == 503
        message = (await resp.json())["error"]["message"]
    assert "openai/gpt-4o-mini: cannot connect" in message and "backup/gpt-4o-mini: answered 500" in message


@pytest.mark.parametrize("status", [400, 422, 413])
async def test_client_faults_do_not_fall_back(gw, http, upstreams, status):
    primary, backup = upstreams
    primary.queue(
        Script(
            status=status,
            body={"error": {"message": "bad thing", "type": "invalid_request_error", "param": None, "code": "bad"}},
        )
    )
    async with http.post(gw.url + "/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.status == status
        doc = await resp.json()
    assert doc["error"]["message"].startswith("bad thing (request id: req_") and doc["error"]["code"] == "bad"
    assert chat_answers(backup) == 0


async def test_stream_client_fault_is_an_error_status_not_a_stream(gw, http, upstreams):
    upstreams[0].queue(Script(status=400))
    async with http.post(gw.url + "/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
        assert resp.status == 400
        assert resp.content_type == "application/json"
    assert chat_answers(upstreams[1]) == 0


async def test_exhausted_chain_names_every_target(gw, http, upstreams):
    primary, backup = upstreams
    primary.queue(Script(status=401))
    backup.queue(Script(status=429))
    async with http.post(gw.url + "/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.status == 503
        err = (await resp.json())["error"]
    assert err["code"] == "all_providers_failed"
    assert "openai/gpt-4o-mini: refused the gateway's credentials (401)" in err["message"]
    assert "backup/gpt-4o-mini: rate limited (429)" in err["message"]
    assert "sk-upstream" not in err["message"]


async def test_all_rate_limited_gives_429_with_retry_after(gw, http, upstreams):
    upstreams[0].queue(Script(status=429, headers={"Retry-After": "30"}))
    upstreams[1].queue(Script(status=429, headers={"Retry-After": "12"}))
    async with http.post(gw.url + "/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "12"
    upstreams[0].queue(Script(status=429))
    upstreams[1].queue(Script(status=429))
    async with http.post(gw.url + "/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1


async def test_all_invalid_gives_502(gw, http, upstreams):
    upstreams[0].queue(Script(body=b"garbage"))
    upstreams[1].queue(Script(body={"no": "choices"}))
    async with http.post(gw.url + "/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.status == 502
        assert (await resp.json())["error"]["code"] == "upstream_invalid_response"


async def test_auto_follows_its_chain_in_order(gw, http, upstreams):
    primary, backup = upstreams
    body = {**CHAT, "model": "localrouter/auto"}
    async with http.post(gw.url + "/v1/chat/completions", json=body, headers=bearer()) as resp:
        assert (await resp.json())["model"] == "openai/gpt-4o-mini"
    primary.queue(Script(status=500))
    async with http.post(gw.url + "/v1/chat/completions", json=body, headers=bearer()) as resp:
        assert (await resp.json())["model"] == "backup/gpt-4o-mini"


async def test_upstream_error_message_never_carries_the_upstream_key(gw, http, upstreams):
    upstreams[0].queue(Script(status=400, body={"error": {"message": "Incorrect key sk-upstream-primary-key here"}}))
    async with http.post(gw.url + "/chat/completions", json=CHAT, headers=bearer()) as resp:
        text = await resp.text()
    assert resp.status == 400 and "sk-upstream-primary-key" not in text and "[redacted]" in text


@pytest.mark.parametrize(
    "script, reason",
    [
        (Script(cut_after=2), "stream interrupted"),
        (Script(stall_after=2), "stream stalled"),
        (Script(bad_chunk_after=2), "malformed stream chunk"),
        (Script(no_done=True), "without [DONE]"),
    ],
)
async def test_mid_stream_failure_ends_with_one_error_event_then_done(gw, http, upstreams, script, reason):
    upstreams[0].queue(script)
    started = time.monotonic()
    async with http.post(gw.url + "/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
        assert resp.status == 200
        events = await sse_events(resp)
    assert events[-1] == "[DONE]"
    error = events[-2]["error"]
    assert set(error) == {"message", "type", "param", "code"} and reason in error["message"]
    assert error["code"] == "stream_interrupted"
    assert all("choices" in e for e in events[:-2])
    assert chat_answers(upstreams[1]) == 0  # no fallback once the client has bytes
    assert time.monotonic() - started < 10


async def test_chunks_are_relayed_as_they_arrive(gw, http, upstreams):
    upstreams[0].queue(Script(chunks=4, chunk_delay=0.4))
    arrivals = []
    async with http.post(gw.url + "/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
        async for line in resp.content:
            if line.startswith(b"data: "):
                arrivals.append(time.monotonic())
    # the first chunk reached us long before the upstream finished (4 x 0.4 s)
    assert arrivals[-1] - arrivals[0] > 1.0


async def test_client_disconnect_cancels_the_upstream(gw, http, upstreams):
    primary, _ = upstreams
    primary.queue(Script(chunks=50, chunk_delay=0.1))
    async with http.post(gw.url + "/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
        await resp.content.readline()
        resp.close()
    for _ in range(50):
        if primary.open_streams == 0:
            break
        await asyncio.sleep(0.1)
    assert primary.open_streams == 0 and primary.finished_streams == 0


async def test_slow_stream_within_the_idle_timeout_is_not_cut(gw, http, upstreams):
    # idle is 2 s in the test config: gaps of 1.3 s, 4 s in all, must all get through
    upstreams[0].queue(Script(chunks=3, chunk_delay=1.3))
    async with http.post(gw.url + "/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
        events = await sse_events(resp)
    assert events[-1] == "[DONE]" and not any("error" in e for e in events[:-1])
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"]) == "w0 w1 w2 "
