"""Every upstream fault, with and without a fallback target, stream and non-stream: what the client sees,
that nothing hangs past its timeout, and that no task or upstream connection is left behind.

The streaming cases go through the official openai SDK: it must raise, never hand back a silently
truncated answer.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass

import openai
import pytest

from gateway.keys import LIVE
from tests.conftest import ALICE, BOB, sse_events
from tests.fakes.openai_upstream import Script

TIMEOUT = 1.0  # first_byte and idle of every provider in this matrix
LIMIT = TIMEOUT * 2 + 3  # the longest any request may take: two targets timing out, plus slack


@dataclass(frozen=True)
class Fault:
    name: str
    script: Script | None  # None: the target's port refuses connections
    alone: int  # status without a fallback target (before the first byte)
    mid_stream: bool = False  # the fault happens after the first event reached the client
    stream_only: bool = False
    plain_only: bool = False


FAULTS = [
    Fault("refuse connection", None, 503),
    Fault("never answers", Script(hang=True), 503),
    Fault("headers then stall", Script(stall_after=0), 503, stream_only=True),
    Fault("half a body then stall", Script(body_then="stall"), 503, plain_only=True),
    Fault("half a body then reset", Script(body_then="cut"), 503, plain_only=True),
    Fault("500", Script(status=500), 503),
    Fault("502", Script(status=502), 503),
    Fault("503", Script(status=503), 503),
    Fault("429 with Retry-After", Script(status=429, headers={"Retry-After": "7"}), 429),
    Fault("429 without Retry-After", Script(status=429), 429),
    Fault("401 to the gateway's key", Script(status=401), 503),
    Fault("malformed JSON", Script(body=b"{not json"), 502, plain_only=True),
    Fault("JSON of the wrong shape", Script(body={"choices": "nope"}), 502, plain_only=True),
    Fault("empty 200", Script(body=b""), 502, plain_only=True),
    Fault("stream of nothing but [DONE]", Script(raw_stream=[b"data: [DONE]\n\n"]), 502, stream_only=True),
    Fault("truncated stream (no [DONE])", Script(no_done=True), 200, mid_stream=True, stream_only=True),
    Fault("reset mid-stream", Script(cut_after=2), 200, mid_stream=True, stream_only=True),
    Fault("stall mid-stream", Script(stall_after=2), 200, mid_stream=True, stream_only=True),
    Fault("malformed chunk mid-stream", Script(bad_chunk_after=2), 200, mid_stream=True, stream_only=True),
]
CASES = [
    (f, stream, fallback)
    for f in FAULTS
    for stream in (False, True)
    for fallback in (True, False)
    if not (f.stream_only and not stream) and not (f.plain_only and stream)
]


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def matrix_config(primary, backup) -> dict:
    timeouts = {"connect": TIMEOUT, "first_byte": TIMEOUT, "idle": TIMEOUT, "total": 30}
    provider = {"models": ["gpt-4o-mini"], "timeouts": timeouts, "cooldown": {"failures": 0}}
    return {
        "server": {"host": "127.0.0.1", "port": 0},
        "providers": [
            {"name": "primary", "base_url": primary.base_url, **provider},
            {"name": "dead", "base_url": f"http://127.0.0.1:{dead_port()}/v1", **provider},
            {"name": "backup", "base_url": backup.base_url, **provider},
        ],
        "strategies": [
            {
                "name": "with-fallback",
                "allow": ["*"],
                "fallbacks": {
                    "primary/gpt-4o-mini": ["backup/gpt-4o-mini"],
                    "dead/gpt-4o-mini": ["backup/gpt-4o-mini"],
                },
            },
            {"name": "alone", "allow": ["*"]},
        ],
        "clients": [
            {"name": "alice", "secret": ALICE, "strategy": "with-fallback"},
            {"name": "bob", "secret": BOB, "strategy": "alone"},
        ],
    }


@pytest.fixture
async def matrix(upstreams, start_gateway):
    primary, backup = upstreams
    gw = await start_gateway(matrix_config(primary, backup))
    baseline = asyncio.all_tasks()  # the gateway's own long-lived tasks (log and usage writers, ...)
    yield gw, primary, backup
    # nothing left behind: no upstream connection in use, no stream open upstream, no stray task
    connector = gw.app[LIVE].current.providers["primary"].session.connector
    async with asyncio.timeout(5):
        while connector._acquired or primary.open_streams or backup.open_streams:  # in-use connections
            await asyncio.sleep(0.05)
    try:
        async with asyncio.timeout(5):
            while _stray(baseline):
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"tasks left running: {[repr(t.get_coro()) for t in _stray(baseline)]}") from None


def _stray(baseline: set[asyncio.Task]) -> list[asyncio.Task]:
    """Tasks started during the test that are still running, but for idle keep-alive connection handlers."""
    current = asyncio.current_task()
    return [
        t
        for t in asyncio.all_tasks() - baseline
        if t is not current and not ("RequestHandler" in repr(t.get_coro()) and "start" in repr(t))
    ]


def target(fault: Fault) -> str:
    return "dead/gpt-4o-mini" if fault.script is None else "primary/gpt-4o-mini"


@pytest.mark.parametrize(
    "fault, stream, fallback",
    CASES,
    ids=[f"{f.name}-{'stream' if s else 'plain'}-{'fallback' if fb else 'alone'}" for f, s, fb in CASES],
)
async def test_fault(matrix, fault, stream, fallback):
    gw, primary, backup = matrix
    if fault.script is not None:
        primary.queue(fault.script)
    body = {"model": target(fault), "messages": [{"role": "user", "content": "hi"}]}
    started = time.monotonic()
    async with gw.sdk(ALICE if fallback else BOB) as sdk, asyncio.timeout(LIMIT):
        if not stream:
            await _plain(sdk, body, fault, fallback)
        else:
            await _stream(sdk, body, fault, fallback)
    assert time.monotonic() - started < LIMIT
    expect_backup = 1 if fallback and not fault.mid_stream else 0
    assert len([r for r in backup.received if r.path.endswith("/chat/completions")]) == expect_backup


async def _plain(sdk, body, fault, fallback):
    if fallback:
        answer = await sdk.chat.completions.create(**body)
        assert answer.model == "backup/gpt-4o-mini" and answer.choices[0].message.content == "Hello from backup"
        return
    with pytest.raises(openai.APIStatusError) as err:
        await sdk.chat.completions.create(**body)
    _check_status_error(err.value, fault)


async def _stream(sdk, body, fault, fallback):
    if fault.mid_stream:  # bytes already reached the client: no fallback; the SDK must raise
        received = []
        with pytest.raises(openai.APIError) as err:
            async for chunk in await sdk.chat.completions.create(**body, stream=True):
                received.append(chunk)
        assert not isinstance(err.value, openai.APIStatusError)
        assert "failed mid-way" in err.value.message
        assert received and received[0].choices[0].delta.role == "assistant"
        return
    if fallback:
        chunks = [c async for c in await sdk.chat.completions.create(**body, stream=True)]
        assert {c.model for c in chunks} == {"backup/gpt-4o-mini"}
        assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 12
        assert all(c.choices for c in chunks)  # the usage rides on the finish chunk: no chunk without choices
        return
    with pytest.raises(openai.APIStatusError) as err:
        async for _ in await sdk.chat.completions.create(**body, stream=True):
            pass
    _check_status_error(err.value, fault)


def _check_status_error(err: openai.APIStatusError, fault: Fault) -> None:
    assert err.status_code == fault.alone
    error = err.body if isinstance(err.body, dict) else {}
    assert set(error) >= {"message", "type", "code"}, err.body
    assert target(fault) in error["message"]  # names the target and why
    if fault.alone == 429:
        expected = "7" if "Retry-After" in fault.script.headers else "1"
        assert err.response.headers["Retry-After"] == expected


async def test_slow_stream_within_limits_is_never_cut(matrix):
    gw, primary, _ = matrix
    primary.queue(Script(chunks=4, chunk_delay=TIMEOUT * 0.7))  # each gap under idle, the whole well over it
    async with gw.sdk(BOB) as sdk:
        stream = await sdk.chat.completions.create(
            model="primary/gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "hi"}]
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "w0 w1 w2 w3 "


async def test_client_disconnect_mid_stream_releases_the_upstream_at_once(matrix, http):
    gw, primary, _ = matrix
    primary.queue(Script(chunks=100, chunk_delay=0.05))
    async with http.post(
        gw.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {BOB}"},
        json={"model": "primary/gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    ) as resp:
        await resp.content.readline()
        resp.close()
    async with asyncio.timeout(2):
        while primary.open_streams:
            await asyncio.sleep(0.02)
    assert primary.finished_streams == 0  # it was cut, not run to the end into the void


async def test_the_raw_events_of_a_mid_stream_failure(matrix, http):
    gw, primary, _ = matrix
    primary.queue(Script(cut_after=2))
    async with http.post(
        gw.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {BOB}"},
        json={"model": "primary/gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    ) as resp:
        events = await sse_events(resp)
    assert [type(e) for e in events[-2:]] == [dict, str] and events[-1] == "[DONE]"
    assert events[-2]["error"]["code"] == "stream_interrupted" and len(events) == 4


@pytest.mark.parametrize("stream", [False, True])
async def test_the_total_timeout_ends_a_call_that_keeps_trickling(upstreams, start_gateway, http, stream):
    primary, backup = upstreams
    config = matrix_config(primary, backup)
    for provider in config["providers"]:
        provider["timeouts"] = {"connect": 1, "first_byte": 1, "idle": 1, "total": 1.5}
    gw = await start_gateway(config)
    # every gap well under idle, the whole well over total
    primary.queue(Script(chunks=40, chunk_delay=0.2) if stream else Script(delay=0.9, body_then="stall"))
    began = time.monotonic()
    async with http.post(
        gw.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {BOB}"},
        json={"model": "primary/gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": "hi"}]},
    ) as resp:
        if stream:
            events = await sse_events(resp)
            assert resp.status == 200 and events[-1] == "[DONE]"
            error = events[-2]["error"]
            assert error["code"] == "stream_interrupted" and "total timeout" in error["message"]
            assert 3 <= len(events) < 20  # some content went out before the cut
        else:
            assert resp.status == 503
            assert "timed out reading the response" in (await resp.json())["error"]["message"]
    assert 1.5 <= time.monotonic() - began < 1.8  # total, not first_byte + first_byte (1.9 s)
