"""OpenAI's Responses API through the gateway, driven by the official openai SDK: translated to chat for
an OpenAI-compatible, an Anthropic and a Gemini upstream (the last two translated twice), natively to
a provider whose ``endpoints`` list ``responses``; stored responses continued, read and deleted, each
visible to its own client alone; fallback, mid-stream failures, usage records and metrics."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ALICE, BOB, bearer
from tests.fakes.openai_upstream import Script
from tests.fakes.wire import KEY

KINDS = ["openai", "anthropic", "gemini"]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CLIENTS = [{"name": "alice", "secret": ALICE, "strategy": "all"}, {"name": "bob", "secret": BOB, "strategy": "all"}]


def _provider(name: str, kind: str, base_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "base_url": base_url,
        "api_key": KEY,
        "timeouts": {"first_byte": 5, "idle": 5},
        "cooldown": {"failures": 0},
        **extra,
    }


def _config(*providers: dict[str, Any], **strategy: Any) -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1", "port": 0},
        "providers": list(providers),
        "strategies": [{"name": "all", "allow": ["*"], **strategy}],
        "clients": CLIENTS,
    }


@pytest.fixture(params=KINDS)
async def translated(request, wire_fake, start_gateway):
    """A gateway in front of two upstreams of one wire format: ``bad/m`` falls back to ``good/m``."""
    bad, good = await wire_fake(request.param, "bad"), await wire_fake(request.param, "good")
    providers = [_provider(f.name, request.param, f.base_url, models=["m"]) for f in (bad, good)]
    return await start_gateway(_config(*providers, fallbacks={"bad/m": ["good/m"]})), bad, good


@pytest.fixture
async def native(fake_upstream, start_gateway):
    """``native/gpt-4o-mini`` speaks the Responses API itself; ``plain/gpt-4o-mini`` (the same upstream,
    with the default endpoints) gets chat completions."""
    fake = await fake_upstream("up")
    providers = [
        _provider("native", "openai", fake.base_url, models=["gpt-4o-mini"], endpoints=["chat", "responses"]),
        _provider("plain", "openai", fake.base_url, models=["gpt-4o-mini"], prices=PRICES),
    ]
    return await start_gateway(_config(*providers)), fake


PRICES = {"gpt-4o-mini": {"input_per_1m": 1000, "output_per_1m": 2000}}


def _text(events: list[Any]) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


async def test_create_continue_retrieve_delete_each_clients_own(translated):
    gw, bad, good = translated
    bad.fail(503)
    async with gw.sdk() as alice, gw.sdk(BOB) as bob:
        first = await alice.responses.create(model="bad/m", input="hi", instructions="Be brief")
        assert first.output_text == "Hello from good [system: Be brief] (turn 1)"
        assert (first.model, first.status, first.object) == ("good/m", "completed", "response")
        assert (first.usage.input_tokens, first.usage.output_tokens, first.usage.total_tokens) == (7, 5, 12)
        assert len(bad.raw) == 1  # it failed, and the fallback served
        # instructions do not carry over; the conversation does
        second = await alice.responses.create(model="good/m", input="and again", previous_response_id=first.id)
        assert second.output_text == "Hello from good (turn 2)" and second.previous_response_id == first.id
        assert (await alice.responses.retrieve(first.id)).output_text == first.output_text
        for call in (
            bob.responses.retrieve(first.id),
            bob.responses.delete(first.id),
            bob.responses.create(model="good/m", input="x", previous_response_id=first.id),
            alice.responses.create(model="good/m", input="x", previous_response_id="resp_nope"),
        ):
            with pytest.raises(openai.NotFoundError):
                await call
        await alice.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            await alice.responses.retrieve(first.id)
        assert (await alice.responses.retrieve(second.id)).id == second.id
        unstored = await alice.responses.create(model="good/m", input="hi", store=False)
        with pytest.raises(openai.NotFoundError):
            await alice.responses.retrieve(unstored.id)


async def test_function_tools_and_a_tool_output_round_trip(translated):
    gw, _, _ = translated
    async with gw.sdk() as client:
        asked = await client.responses.create(model="good/m", input="Weather in Paris?", tools=[WEATHER])
        [call] = [item for item in asked.output if item.type == "function_call"]
        assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
        output = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
        answered = await client.responses.create(
            model="good/m", input=[output], tools=[WEATHER], previous_response_id=asked.id
        )
    assert answered.output_text == "The weather in Paris is sunny"


async def test_streams_fall_back_and_carry_text_and_tool_calls(translated):
    gw, bad, _ = translated
    bad.fail(503)
    async with gw.sdk() as client:
        stream = await client.responses.create(model="bad/m", input="hi", stream=True)
        events = [event async for event in stream]
        types = [e.type for e in events]
        assert types[:4] == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
        ]
        assert types[-1] == "response.completed" and "response.output_text.done" in types
        assert [e.sequence_number for e in events] == list(range(len(events)))
        assert _text(events) == "Hello from good (turn 1)"
        done = events[-1].response
        assert done.model == "good/m" and done.usage.input_tokens == 7 and done.output_text == _text(events)
        # the helper's accumulated response, with a tool call streamed as argument deltas
        async with client.responses.stream(model="good/m", input="Weather?", tools=[WEATHER]) as helper:
            kinds = [event.type async for event in helper]
            final = await helper.get_final_response()
        assert "response.function_call_arguments.delta" in kinds
        [call] = [item for item in final.output if item.type == "function_call"]
        assert json.loads(call.arguments) == {"city": "Paris"}
        # a streamed response is stored too, and continues like any other
        output = {"type": "function_call_output", "call_id": call.call_id, "output": "rainy"}
        stream = await client.responses.create(
            model="good/m", input=[output], tools=[WEATHER], previous_response_id=final.id, stream=True
        )
        assert _text([event async for event in stream]) == "The weather in Paris is rainy"


async def test_a_provider_listing_responses_gets_the_request_natively(native):
    gw, fake = native
    async with gw.sdk() as client:
        # a built-in tool would not translate: natively it passes through as sent
        first = await client.responses.create(
            model="native/gpt-4o-mini", input="hi", tools=[{"type": "web_search"}], reasoning={"effort": "low"}
        )
        sent = fake.received[-1]
        assert sent.path == "/v1/responses"
        assert sent.body == {
            "model": "gpt-4o-mini",
            "input": "hi",
            "tools": [{"type": "web_search"}],
            "reasoning": {"effort": "low"},
        }
        assert first.output_text == "Hello from up" and first.model == "native/gpt-4o-mini"
        assert first.id.startswith("resp_") and first.id != "resp_upstream"  # the gateway's own id
        # the gateway's id is no upstream's: the stored conversation goes upstream as input
        second = await client.responses.create(model="native/gpt-4o-mini", input="more", previous_response_id=first.id)
        body = fake.received[-1].body
        assert "previous_response_id" not in body
        assert [(item["role"], item["content"][0]["text"]) for item in body["input"]] == [
            ("user", "hi"),
            ("assistant", "Hello from up"),
            ("user", "more"),
        ]
        assert all("id" not in item for item in body["input"])
        assert (await client.responses.retrieve(second.id)).output_text == "Hello from up"
        stream = await client.responses.create(model="native/gpt-4o-mini", input="hi", stream=True)
        events = [event async for event in stream]
        assert fake.received[-1].path == "/v1/responses" and fake.received[-1].body["stream"] is True
        assert events[-1].type == "response.completed" and _text(events) == "Hello from up"
        assert events[0].response.id == events[-1].response.id != "resp_upstream"
        assert events[-1].response.model == "native/gpt-4o-mini"
        assert (await client.responses.retrieve(events[0].response.id)).output_text == "Hello from up"
        # the same upstream without `responses` in its endpoints: chat completions (the default)
        plain = await client.responses.create(model="plain/gpt-4o-mini", input="hi")
    assert fake.received[-1].path == "/v1/chat/completions" and plain.output_text == "Hello from up"


@pytest.mark.parametrize("model", ["plain/gpt-4o-mini", "native/gpt-4o-mini"])
async def test_a_mid_stream_failure_ends_with_response_failed(native, http, model):
    gw, fake = native
    fake.queue(Script(cut_after=3))
    async with gw.sdk() as client:
        raw = await client.responses.with_raw_response.create(model=model, input="hi", stream=True)
        events = [event async for event in raw.parse()]
    assert events[0].type == "response.created" and events[-1].type == "response.failed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    failed = events[-1].response
    assert failed.status == "failed" and failed.error.code == "server_error" and failed.id == events[0].response.id
    record = await _record(http, gw, raw.headers["x-request-id"])
    assert (record["endpoint"], record["stream"], record["error_code"]) == ("responses", True, "stream_interrupted")


async def test_an_upstreams_error_event_mid_stream_ends_with_response_failed(native):
    gw, fake = native
    created = {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_up", "status": "in_progress"}}
    error = {"type": "error", "sequence_number": 1, "code": "server_error", "message": "upstream broke"}
    fake.queue(Script(raw_stream=[f"data: {json.dumps(e)}\n\n".encode() for e in (created, error)]))
    async with gw.sdk() as client:
        stream = await client.responses.create(model="native/gpt-4o-mini", input="hi", stream=True)
        events = [event async for event in stream]
    assert [e.type for e in events] == ["response.created", "response.failed"]
    failed = events[-1].response
    assert failed.id == events[0].response.id != "resp_up" and failed.status == "failed"
    assert "upstream broke" in failed.error.message and events[-1].sequence_number == 1


async def _record(http, gw, request_id: str) -> dict[str, Any]:
    """The usage record of a request; a stream's is written once its handler returns, which may be just
    after the client read the stream's end."""
    for _ in range(100):
        async with http.get(gw.url + "/v1/generation", params={"id": request_id}, headers=bearer()) as resp:
            if resp.status == 200:
                return await resp.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"no usage record for {request_id}")


async def test_usage_records_cost_and_metrics_name_the_endpoint(native, http):
    gw, _ = native
    cases = [("plain", False), ("plain", True), ("native", True)]  # plain has a price, native none
    async with gw.sdk() as client:
        for provider, stream in cases:
            raw = await client.responses.with_raw_response.create(
                model=f"{provider}/gpt-4o-mini", input="hi", stream=stream
            )
            if stream:
                [event async for event in raw.parse()]
            record = await _record(http, gw, raw.headers["x-request-id"])
            assert (record["endpoint"], record["model"], record["stream"]) == (
                "responses",
                f"{provider}/gpt-4o-mini",
                stream,
            )
            assert (record["prompt_tokens"], record["completion_tokens"], record["total_tokens"]) == (7, 5, 12)
            assert record["cost_usd"] == (pytest.approx(0.017) if provider == "plain" else None)
        await client.responses.retrieve((await client.responses.create(model="native/gpt-4o-mini", input="x")).id)
    async with http.get(gw.url + "/metrics") as resp:
        families = text_string_to_metric_families(await resp.text())
    served = {
        (s.labels["model"], s.labels["status"]): s.value
        for f in families
        for s in f.samples
        if s.name == "localrouter_requests_total" and s.labels["endpoint"] == "responses"
    }
    assert served == {("plain/gpt-4o-mini", "200"): 2, ("native/gpt-4o-mini", "200"): 2, ("none", "200"): 1}


async def test_rate_limits_count_responses(fake_upstream, start_gateway):
    fake = await fake_upstream("up")
    limits = [{"requests": 1, "per": "minute"}]
    gw = await start_gateway(
        _config(_provider("plain", "openai", fake.base_url, models=["gpt-4o-mini"]), rate_limits=limits)
    )
    async with gw.sdk() as client:
        await client.responses.create(model="plain/gpt-4o-mini", input="hi")
        with pytest.raises(openai.RateLimitError):
            await client.responses.create(model="plain/gpt-4o-mini", input="hi")


async def test_a_request_that_cannot_translate_is_a_400_naming_the_part(native):
    gw, fake = native
    async with gw.sdk() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(model="plain/gpt-4o-mini", input="hi", tools=[{"type": "web_search"}])
    assert caught.value.body["param"] == "tools[0].type"
    assert fake.received == []  # refused before any upstream was asked


async def test_a_long_answer_names_the_target_that_served_it(translated):
    """An upstream answer large enough to be relayed as its own bytes (gateway.jsonx.Answer) is read and
    named after the target all the same."""
    gw, _, good = translated
    instructions = "x" * 6000  # the fakes echo the system prompt into the answer
    async with gw.sdk() as alice:
        response = await alice.responses.create(model="good/m", input="hi", instructions=instructions)
    assert response.model == "good/m"
    assert response.output_text == f"Hello from good [system: {instructions}] (turn 1)"
