"""The OpenAI-compatible adapter's reading of odd but valid upstream streams, and model discovery."""

from __future__ import annotations

import json
import socket

from gateway.jsonx import RELAY_MIN_BYTES
from tests.conftest import bearer, sse_events, standard_config
from tests.fakes.openai_upstream import Script

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def chunk(text: str) -> bytes:
    return json.dumps(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
        }
    ).encode()


async def test_sse_framing_variants_are_understood(gw, http, upstreams):
    one, two, three, four = chunk("a"), chunk("b"), chunk("c"), chunk("d")
    split = four.index(b", ")
    pieces = [
        b": keep-alive comment\r\n\r\n",
        b"event: message\r\ndata: " + one[:10],
        one[10:] + b"\r",
        b"\n\r\n",  # split across reads, CRLF
        b"id: 7\ndata:" + two + b"\n\n\n",  # no space after the colon; an extra blank line
        b"retry: 100\n\ndata: " + three + b"\n\n",
        b"data: " + four[: split + 1] + b"\ndata: " + four[split + 2 :] + b"\n\n",  # one event on two data lines
        b"data: [DO",
        b"NE]\n\n",
    ]
    upstreams[0].queue(Script(raw_stream=pieces))
    async with http.post(gw.url + "/chat/completions", json=CHAT, headers=bearer()) as resp:
        events = await sse_events(resp)
    assert [e["choices"][0]["delta"]["content"] for e in events[:-1]] == ["a", "b", "c", "d"]
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert events[-1] == "[DONE]"


async def test_json_answer_to_a_stream_request_is_invalid_and_falls_back(gw, http, upstreams):
    upstreams[0].queue(Script(body={"choices": []}))
    async with http.post(gw.url + "/chat/completions", json=CHAT, headers=bearer()) as resp:
        events = await sse_events(resp)
    assert events[0]["model"] == "backup/gpt-4o-mini"


async def test_error_event_inside_a_stream_is_a_failure(gw, http, upstreams):
    upstreams[0].queue(
        Script(raw_stream=[b"data: " + chunk("a") + b"\n\n", b'data: {"error": {"message": "overloaded"}}\n\n'])
    )
    async with http.post(gw.url + "/chat/completions", json=CHAT, headers=bearer()) as resp:
        events = await sse_events(resp)
    assert events[0]["choices"][0]["delta"]["content"] == "a"
    assert "overloaded" in events[1]["error"]["message"] and events[2] == "[DONE]"


async def test_discovery_failure_lets_requests_through_to_the_upstream(upstreams, start_gateway, http):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    data = standard_config(*upstreams)
    data["providers"].append({"name": "dead", "base_url": f"http://127.0.0.1:{dead}/v1"})
    data["strategies"][0]["allow"].append("dead/*")
    gw = await start_gateway(data)
    async with http.get(gw.url + "/models", headers=bearer()) as resp:
        ids = [m["id"] for m in (await resp.json())["data"]]
    assert not [i for i in ids if i.startswith("dead/")]
    async with http.post(
        gw.url + "/chat/completions", json={**CHAT, "model": "dead/llama3", "stream": False}, headers=bearer()
    ) as resp:
        assert resp.status == 503  # not 404: the provider could not say, so the upstream was asked
        assert "dead/llama3: cannot connect" in (await resp.json())["error"]["message"]


async def test_discovered_models_are_asked_once_and_cached(gw, http, upstreams):
    _, backup = upstreams
    for _ in range(3):
        async with http.get(gw.url + "/models", headers=bearer()) as resp:
            assert resp.status == 200
    assert len([r for r in backup.received if r.path == "/v1/models"]) == 1
    assert backup.received[0].headers["Authorization"] == "Bearer sk-upstream-backup-key"


async def test_a_json_answer_is_relayed_as_sent_with_only_the_model_changed(gw, http, upstreams):
    # spacing, exponents and long digits the gateway would write differently if it encoded the answer again
    # (an answer this large: a small one is encoded again, which costs less than finding its model)
    raw = (
        b'{"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [1e-05, '
        b"0.10000000000000001, -2.5E+3" + b", 0.25" * 1000 + b']}], "model" : "text-embedding-3-small", '
        b'"usage": {"prompt_tokens": 3, "total_tokens": 3}}'
    )
    assert len(raw) >= RELAY_MIN_BYTES
    upstreams[0].queue(Script(body=raw))
    body = {"model": "openai/text-embedding-3-small", "input": "hi"}
    async with http.post(gw.url + "/embeddings", json=body, headers=bearer()) as resp:
        assert resp.status == 200
        got = await resp.read()
    assert got == raw.replace(b'"text-embedding-3-small"', b'"openai/text-embedding-3-small"')


async def test_an_answer_naming_model_twice_is_encoded_again_with_the_served_model(gw, http, upstreams):
    answer = {
        "id": "c",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "usage": {"prompt_tokens": 1},
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "x", "tool": {"model": "m"}},
                "finish_reason": "stop",
            }
        ],
    }
    upstreams[0].queue(Script(body=answer))
    async with http.post(gw.url + "/chat/completions", json={**CHAT, "stream": False}, headers=bearer()) as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert doc["model"] == "openai/gpt-4o-mini" and doc["choices"][0]["message"]["tool"] == {"model": "m"}


def test_swap_model_changes_the_value_only_when_certain():
    from gateway.jsonx import swap_model

    assert swap_model(b'{"a":1,"model":"m","b":[1.50]}', "m", "p/m") == b'{"a":1,"model":"p/m","b":[1.50]}'
    assert swap_model(b'{"model"\n :\t"m"}', "m", "p/m") == b'{"model"\n :\t"p/m"}'
    assert swap_model(b'{"model":"m","x":{"model":"m"}}', "m", "p/m") is None  # twice: not certain
    assert swap_model(b'{"x":"model","model":"m"}', "m", "p/m") is None
    assert swap_model(b'{"model":"a\\/b"}', "a/b", "p/a/b") is None  # written otherwise than orjson would
    assert swap_model(b'{"model":"other"}', "m", "p/m") is None
    assert swap_model(b'{"model":null}', None, "p/m") is None
    assert swap_model(b'{"model"}', "m", "p/m") is None
    # an escaped top-level key with a literal nested one: escapes anywhere mean encoding again
    assert swap_model(b'{"x":{"model":"m"},"mod\\u0065l":"m"}', "m", "p/m") is None
    assert swap_model(b'{"model":"m","text":"a\\nb"}', "m", "p/m") is None
