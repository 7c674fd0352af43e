"""One contract, every provider type: the same OpenAI SDK calls give the same answers whichever wire
format is behind the gateway (tests/fakes/wire.py plays the same model in each)."""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import ALICE
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.wire import KEY, WireFake

TYPES = ["openai", "azure", "anthropic", "gemini", "ollama"]
EMBEDDING_TYPES = ["openai", "azure", "gemini", "ollama"]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
USER = {"role": "user", "content": "hi"}


def config(kind: str, fake: WireFake, backup: FakeOpenAI) -> dict:
    up = {
        "name": "up",
        "type": kind,
        "base_url": fake.base_url,
        "api_key": KEY,
        "models": ["m"],
        "timeouts": {"first_byte": 5, "idle": 5},
        "cooldown": {"failures": 0},
    }
    if kind == "azure":
        up.update(api_version="2024-10-21", deployments={"m": "dep-m"})
    return {
        "server": {"host": "127.0.0.1", "port": 0},
        "providers": [up, {"name": "backup", "base_url": backup.base_url, "models": ["gpt-4o-mini"]}],
        "strategies": [{"name": "default", "allow": ["*"], "fallbacks": {"up/m": ["backup/gpt-4o-mini"]}}],
        "clients": [{"name": "alice", "secret": ALICE, "strategy": "default"}],
    }


@pytest.fixture(params=TYPES)
async def stack(request, fake_upstream, start_gateway, wire_fake):
    fake = await wire_fake(request.param)
    backup = await fake_upstream("backup")
    gw = await start_gateway(config(request.param, fake, backup))
    async with gw.sdk() as sdk:
        yield request.param, fake, backup, gw, sdk


async def test_plain_chat(stack):
    kind, fake, _, _, sdk = stack
    answer = await sdk.chat.completions.create(model="up/m", messages=[USER])
    assert answer.model == "up/m"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == "Hello from up (turn 1)"
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (7, 5, 12)


async def test_system_prompt_and_multi_turn(stack):
    kind, fake, _, _, sdk = stack
    messages = [
        {"role": "system", "content": "Be brief."},
        USER,
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "And again?"},
    ]
    answer = await sdk.chat.completions.create(model="up/m", messages=messages)
    assert answer.choices[0].message.content == "Hello from up [system: Be brief.] (turn 2)"
    assert fake.seen[-1].system == "Be brief." and fake.seen[-1].user_turns == 2
    if kind == "anthropic":  # the system prompt went where the format wants it
        assert fake.raw[-1][2]["system"] == "Be brief."
        assert [m["role"] for m in fake.raw[-1][2]["messages"]] == ["user", "assistant", "user"]
    if kind == "gemini":
        assert [c["role"] for c in fake.raw[-1][2]["contents"]] == ["user", "model", "user"]


async def test_tool_call_round_trip(stack):
    kind, fake, _, _, sdk = stack
    first = await sdk.chat.completions.create(model="up/m", messages=[USER], tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"} and call.id
    history = [
        USER,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = await sdk.chat.completions.create(model="up/m", messages=history, tools=[WEATHER])
    assert second.choices[0].message.content == "The weather in Paris is sunny"
    assert second.choices[0].finish_reason == "stop"
    assert fake.seen[-1].tool_result == "sunny"


@pytest.mark.parametrize("apart", [False, True], ids=["usage-on-finish", "include_usage"])
async def test_streaming_text(stack, apart):
    kind, fake, _, _, sdk = stack
    options = {"stream_options": {"include_usage": True}} if apart else {}
    chunks = [c async for c in await sdk.chat.completions.create(model="up/m", messages=[USER], stream=True, **options)]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from up (turn 1)"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    if apart:  # OpenAI's usage chunk: no choices, last
        assert chunks[-1].usage.total_tokens == 12 and chunks[-1].choices == []
    else:  # no chunk without choices; the usage on the finish_reason one, last
        assert all(c.choices for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"
        assert chunks[-1].usage.total_tokens == 12
    assert [c for c in chunks if c.usage] == chunks[-1:]
    assert {c.model for c in chunks} == {"up/m"} and len({c.id for c in chunks}) == 1
    assert fake.seen[-1].stream


async def reassemble(stream) -> tuple[dict, list[str]]:
    """What the openai SDK's helpers do with tool call deltas: concatenate by index."""
    calls: dict[int, dict] = {}
    finishes = []
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
            for d in choice.delta.tool_calls or []:
                call = calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = call["id"] or d.id
                call["name"] += (d.function.name or "") if d.function else ""
                call["arguments"] += (d.function.arguments or "") if d.function else ""
    return calls, finishes


async def test_streaming_tool_call_reassembles_as_from_openai(stack):
    kind, fake, _, _, sdk = stack
    calls, finishes = await reassemble(
        await sdk.chat.completions.create(model="up/m", messages=[USER], tools=[WEATHER], stream=True)
    )
    assert list(calls) == [0] and finishes == ["tool_calls"]
    assert calls[0]["name"] == "get_weather" and json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    assert calls[0]["id"]
    # and the SDK's own stream helper reassembles it the same way
    async with sdk.chat.completions.stream(model="up/m", messages=[USER], tools=[WEATHER]) as stream:
        final = await stream.get_final_completion()
    (call,) = final.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}


async def test_length_finish_reason(stack):
    kind, fake, _, _, sdk = stack
    answer = await sdk.chat.completions.create(model="up/m", messages=[USER], max_tokens=1)
    assert answer.choices[0].finish_reason == "length" and answer.choices[0].message.content == "Hel"
    chunks = [
        c async for c in await sdk.chat.completions.create(model="up/m", messages=[USER], max_tokens=1, stream=True)
    ]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]


@pytest.mark.parametrize("status", [429, 500, 503, 529])
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_429_and_5xx_fall_back(stack, status, stream):
    kind, fake, backup, _, sdk = stack
    fake.fail(status)
    if stream:
        chunks = [c async for c in await sdk.chat.completions.create(model="up/m", messages=[USER], stream=True)]
        assert {c.model for c in chunks} == {"backup/gpt-4o-mini"}
    else:
        answer = await sdk.chat.completions.create(model="up/m", messages=[USER])
        assert answer.model == "backup/gpt-4o-mini"


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_400_surfaces_as_400(stack, stream):
    kind, fake, backup, _, sdk = stack
    fake.fail(400)
    with pytest.raises(openai.BadRequestError) as err:
        if stream:
            async for _ in await sdk.chat.completions.create(model="up/m", messages=[USER], stream=True):
                pass
        else:
            await sdk.chat.completions.create(model="up/m", messages=[USER])
    assert "scripted 400" in err.value.body["message"]
    assert not [r for r in backup.received if r.path.endswith("/chat/completions")]


async def test_embeddings_or_a_clear_400(stack):
    kind, fake, _, _, sdk = stack
    if kind not in EMBEDDING_TYPES:
        with pytest.raises(openai.BadRequestError) as err:
            await sdk.embeddings.create(model="up/m", input="abc")
        assert err.value.body["code"] == "unsupported_endpoint"
        return
    one = await sdk.embeddings.create(model="up/m", input="abc")
    assert one.data[0].embedding == [0.5, 3.0] and one.model == "up/m"
    many = await sdk.embeddings.create(model="up/m", input=["a", "bcd"])
    assert [d.embedding for d in many.data] == [[0.5, 1.0], [0.5, 3.0]] and [d.index for d in many.data] == [0, 1]


async def test_legacy_completions_only_where_the_format_has_them(stack):
    kind, fake, _, _, sdk = stack
    if kind in ("openai", "azure"):
        return  # served as is (the fake has no /completions: nothing more to check here)
    with pytest.raises(openai.BadRequestError) as err:
        await sdk.completions.create(model="up/m", prompt="hi")
    assert err.value.body["code"] == "unsupported_endpoint"


async def test_features_the_upstream_cannot_honour_are_a_clear_400(stack):
    kind, fake, _, _, sdk = stack
    if kind in ("openai", "azure"):
        return  # OpenAI's own format: everything passes through
    before = len(fake.raw)
    with pytest.raises(openai.BadRequestError) as err:
        await sdk.chat.completions.create(model="up/m", messages=[USER], n=2)
    assert err.value.body["param"] == "n" and kind in err.value.body["message"]
    assert len(fake.raw) == before  # refused before any upstream call
