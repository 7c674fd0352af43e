"""How a stream ends: where its usage goes (the client's loop must not break on it), and a stream that
fails after its 200 is recorded as failed everywhere the gateway keeps account."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import pytest

from gateway.keys import CONFIG, OBSERVER
from gateway.observability.usage import SQLiteStore, UsageRecord
from tests.conftest import bearer, sse_events
from tests.fakes.openai_upstream import USAGE, Script
from tests.gateway.test_observability import samples, value
from tests.procs import run

MESSAGES = [{"role": "user", "content": "hi"}]
CHAT = {"model": "openai/gpt-4o-mini", "messages": MESSAGES}


# --- item: the usage chunk must not break `chunk.choices[0]` -------------------------------------------


@pytest.mark.parametrize("options", [None, {"include_usage": False}, {}])
@pytest.mark.parametrize("script", [Script(), Script(chunk_delay=0.05)], ids=["one-read", "a-read-each"])
async def test_the_tutorial_loop_works_and_usage_rides_on_the_finish_chunk(gw, upstreams, options, script):
    upstreams[0].queue(script)
    extra = {} if options is None else {"stream_options": options}
    text, chunks = "", []
    async with gw.sdk() as sdk:
        async for chunk in await sdk.chat.completions.create(**CHAT, stream=True, **extra):
            text += chunk.choices[0].delta.content or ""  # the loop of every tutorial
            chunks.append(chunk)
    assert text == "w0 w1 w2 "
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == USAGE["total_tokens"]
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.parametrize("script", [Script(), Script(chunk_delay=0.05)], ids=["one-read", "a-read-each"])
async def test_include_usage_gets_the_usage_chunk_as_openai_sends_it(gw, upstreams, script):
    upstreams[0].queue(script)
    async with gw.sdk() as sdk:
        chunks = [
            c
            async for c in await sdk.chat.completions.create(
                **CHAT, stream=True, stream_options={"include_usage": True}
            )
        ]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == USAGE["total_tokens"]
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-2].usage is None
    assert all(c.choices for c in chunks[:-1])


async def test_legacy_completions_stream_follows_the_same_rule(gw, upstreams):
    upstreams[0].queue(Script(chunk_delay=0.05))
    async with gw.sdk() as sdk:
        chunks = [c async for c in await sdk.completions.create(model="openai/gpt-4o-mini", prompt="x", stream=True)]
        apart = [
            c
            async for c in await sdk.completions.create(
                model="openai/gpt-4o-mini", prompt="x", stream=True, stream_options={"include_usage": True}
            )
        ]
    assert all(c.choices for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.completion_tokens == USAGE["completion_tokens"]
    assert apart[-1].choices == [] and apart[-1].usage.completion_tokens == USAGE["completion_tokens"]


async def test_the_finish_chunk_held_for_the_usage_goes_out_before_a_failure(gw, http, upstreams):
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    content = {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "a"}, "finish_reason": None}]}
    finish = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    upstreams[0].queue(
        Script(
            raw_stream=[
                b"data: " + json.dumps(content).encode() + b"\n\n",
                b"data: " + json.dumps(finish).encode() + b"\n\n",
            ]
        )
    )  # then no [DONE]
    async with http.post(gw.url + "/v1/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
        events = await sse_events(resp)
    assert [e["choices"][0]["finish_reason"] for e in events[:2]] == [None, "stop"]
    assert events[2]["error"]["code"] == "stream_interrupted" and events[3] == "[DONE]" and len(events) == 4


async def test_with_several_choices_the_usage_rides_on_the_last_finish_chunk(gw, http, upstreams):
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}

    def event(*choices: dict) -> bytes:
        return b"data: " + json.dumps({**base, "choices": list(choices)}).encode() + b"\n\n"

    usage = b"data: " + json.dumps({**base, "choices": [], "usage": USAGE}).encode() + b"\n\n"
    pieces = [
        event({"index": 0, "delta": {"content": "a"}, "finish_reason": None}),
        event({"index": 1, "delta": {"content": "b"}, "finish_reason": None}),
        event({"index": 0, "delta": {}, "finish_reason": "stop"}),
        event({"index": 1, "delta": {}, "finish_reason": "length"}),
        usage,
        b"data: [DONE]\n\n",
    ]
    upstreams[0].queue(Script(raw_stream=pieces))  # a read each
    async with http.post(
        gw.url + "/v1/chat/completions", json={**CHAT, "stream": True, "n": 2}, headers=bearer()
    ) as resp:
        events = await sse_events(resp)
    assert events[-1] == "[DONE]" and all(e["choices"] for e in events[:-1])
    assert [e["choices"][0]["finish_reason"] for e in events[:-1]] == [None, None, "stop", "length"]
    assert [e.get("usage") for e in events[:-1]] == [None, None, None, USAGE]


# --- item: a stream that breaks after its 200 is a failure in every account --------------------------


async def test_a_stream_broken_after_its_200_is_recorded_as_failed(gw, http, upstreams):
    upstreams[0].queue(Script(cut_after=2))
    async with http.post(gw.url + "/v1/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
        assert resp.status == 200
        broken_id = resp.headers["X-Request-ID"]
        assert (await sse_events(resp))[-2]["error"]["code"] == "stream_interrupted"
    async with http.post(gw.url + "/v1/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
        whole_id = resp.headers["X-Request-ID"]
        await resp.read()
    records = {}
    for request_id in (broken_id, whole_id):
        async with http.get(gw.url + "/v1/generation", params={"id": request_id}, headers=bearer()) as resp:
            records[request_id] = await resp.json()
    assert (records[broken_id]["status"], records[broken_id]["error_code"]) == (200, "stream_interrupted")
    assert records[whole_id]["error_code"] is None
    await asyncio.sleep(0.4)  # the access log's batch is written
    lines = {line["request_id"]: line for line in gw.access.lines}
    assert lines[broken_id]["status"] == 200 and lines[broken_id]["error_code"] == "stream_interrupted"
    assert "error_code" not in lines[whole_id]
    async with http.get(gw.url + "/metrics") as resp:
        found = samples(await resp.text())
    labels = dict(endpoint="chat", client="alice", model="openai/gpt-4o-mini", provider="openai")
    assert value(found, "localrouter_stream_errors_total", **labels, code="stream_interrupted") == 1
    assert value(found, "localrouter_requests_total", **labels, status="200") == 2
    await gw.app[OBSERVER].usage.flush()
    out = run("usage", "--db", gw.app[CONFIG].usage.path, "--json")
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert (row["requests"], row["errors"]) == (2, 1)


OLD_SCHEMA = (
    "CREATE TABLE usage (id TEXT PRIMARY KEY, ts REAL NOT NULL, client TEXT NOT NULL, endpoint TEXT NOT NULL, "
    "model_requested TEXT, model TEXT, provider TEXT, stream INTEGER NOT NULL, status INTEGER NOT NULL, "
    "prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, total_tokens INTEGER NOT NULL, "
    "cost_usd REAL, duration_ms REAL NOT NULL, ttfb_ms REAL, attempts INTEGER NOT NULL) WITHOUT ROWID"
)


def test_a_usage_file_from_before_error_codes_is_migrated(tmp_path):
    path = str(tmp_path / "old.db")
    db = sqlite3.connect(path)
    db.execute(OLD_SCHEMA)
    db.execute(
        "INSERT INTO usage VALUES ('req_old', ?, 'alice', 'chat', 'm', 'p/m', 'p', 0, 503, 0, 0, 0, 0.0, 3.0, NULL, 1)",
        (time.time(),),
    )
    db.commit()
    db.close()
    store = SQLiteStore(path)
    try:
        assert store.get("req_old").error_code is None and store.get("req_old").status == 503
        store.write(
            [
                UsageRecord(
                    "req_new",
                    time.time(),
                    "alice",
                    "chat",
                    "m",
                    "p/m",
                    "p",
                    True,
                    200,
                    7,
                    5,
                    12,
                    None,
                    9.0,
                    1.0,
                    1,
                    "stream_interrupted",
                )
            ]
        )
        assert store.get("req_new").error_code == "stream_interrupted"
        (row,) = store.summary(0, "client")
        assert (row["requests"], row["errors"]) == (2, 2)
    finally:
        store.close()
    out = run("usage", "--db", path, "--json")  # the CLI reads the migrated file too
    assert json.loads(out.stdout)[0]["errors"] == 2
