"""What each adapter sends upstream for the features that have a translation, and what it refuses."""

from __future__ import annotations

import base64
import struct

import openai
import pytest

from tests.conftest import bearer
from tests.providers.test_contract import USER, WEATHER, config

PNG = "data:image/png;base64,iVBORw0KGgo="
IMAGE = {
    "role": "user",
    "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": PNG}}],
}
HTTP_IMAGE = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}


async def gateway_for(kind, fake_upstream, start_gateway, wire_fake):
    fake = await wire_fake(kind)
    backup = await fake_upstream("backup")
    return fake, await start_gateway(config(kind, fake, backup))


async def test_anthropic_request_shape(fake_upstream, start_gateway, wire_fake):
    fake, gw = await gateway_for("anthropic", fake_upstream, start_gateway, wire_fake)
    async with gw.sdk() as sdk:
        await sdk.chat.completions.create(
            model="up/m", messages=[{"role": "system", "content": "S"}, IMAGE], stop="END", temperature=0.5, user="u1"
        )
        await sdk.chat.completions.create(
            model="up/m",
            messages=[HTTP_IMAGE],
            max_tokens=99,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            parallel_tool_calls=False,
        )
        await sdk.chat.completions.create(model="up/m", messages=[USER], tools=[WEATHER], tool_choice="required")
        await sdk.chat.completions.create(model="up/m", messages=[USER], tools=[WEATHER], tool_choice="none")
    first, second, third, fourth = (raw[2] for raw in fake.raw[-4:])
    assert first["system"] == "S" and first["max_tokens"] == 4096  # the documented default
    assert first["stop_sequences"] == ["END"] and first["temperature"] == 0.5
    assert first["metadata"] == {"user_id": "u1"}
    assert first["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    assert second["messages"][0]["content"][0]["source"] == {"type": "url", "url": "https://example.com/a.png"}
    assert second["max_tokens"] == 99
    assert second["tools"][0]["name"] == "get_weather" and second["tools"][0]["input_schema"]["required"] == ["city"]
    assert second["tool_choice"] == {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    assert third["tool_choice"] == {"type": "any"}
    assert "tools" not in fourth  # none: the model may not call tools


async def test_anthropic_consecutive_tool_results_become_one_user_turn(fake_upstream, start_gateway, wire_fake):
    fake, gw = await gateway_for("anthropic", fake_upstream, start_gateway, wire_fake)
    calls = [
        {"id": f"c{i}", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "X"}'}}
        for i in (1, 2)
    ]
    messages = [
        USER,
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "rainy"},
    ]
    async with gw.sdk() as sdk:
        await sdk.chat.completions.create(model="up/m", messages=messages, tools=[WEATHER])
    sent = fake.raw[-1][2]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert [b["type"] for b in sent[1]["content"]] == ["tool_use", "tool_use"]
    assert sent[1]["content"][0]["input"] == {"city": "X"}
    assert [(b["type"], b["tool_use_id"], b["content"]) for b in sent[2]["content"]] == [
        ("tool_result", "c1", "sunny"),
        ("tool_result", "c2", "rainy"),
    ]


async def test_gemini_request_shape_and_refusals(fake_upstream, start_gateway, wire_fake):
    fake, gw = await gateway_for("gemini", fake_upstream, start_gateway, wire_fake)
    async with gw.sdk() as sdk:
        await sdk.chat.completions.create(
            model="up/m",
            messages=[{"role": "system", "content": "S"}, IMAGE],
            max_tokens=50,
            stop=["A", "B"],
            response_format={"type": "json_object"},
            tools=[WEATHER],
            tool_choice="required",
        )
        with pytest.raises(openai.BadRequestError) as err:
            await sdk.chat.completions.create(model="up/m", messages=[HTTP_IMAGE])
        assert "data URL" in err.value.body["message"]
    path, headers, body = fake.raw[-1]
    assert path == "/v1beta/models/m:generateContent" and "key=" not in path  # the key is a header
    assert body["systemInstruction"] == {"parts": [{"text": "S"}]}
    assert body["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    assert body["generationConfig"] == {
        "maxOutputTokens": 50,
        "stopSequences": ["A", "B"],
        "responseMimeType": "application/json",
    }
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]["required"] == ["city"]


async def test_gemini_stream_url_and_safety_finish(fake_upstream, start_gateway, wire_fake):
    fake, gw = await gateway_for("gemini", fake_upstream, start_gateway, wire_fake)
    async with gw.sdk() as sdk:
        [c async for c in await sdk.chat.completions.create(model="up/m", messages=[USER], stream=True)]
    assert fake.raw[-1][0] == "/v1beta/models/m:streamGenerateContent?alt=sse"


async def test_ollama_passes_options_and_keep_alive(fake_upstream, start_gateway, wire_fake):
    fake, gw = await gateway_for("ollama", fake_upstream, start_gateway, wire_fake)
    async with gw.sdk() as sdk:
        await sdk.chat.completions.create(
            model="up/m",
            messages=[IMAGE],
            temperature=0.2,
            max_tokens=40,
            extra_body={"options": {"num_ctx": 8192, "temperature": 0.9}, "keep_alive": "10m"},
        )
    body = fake.raw[-1][2]
    assert body["options"] == {"temperature": 0.9, "num_predict": 40, "num_ctx": 8192}  # the client's options win
    assert body["keep_alive"] == "10m" and body["stream"] is False
    assert body["messages"][0] == {"role": "user", "content": "what is this?", "images": ["iVBORw0KGgo="]}


async def test_azure_deployment_url_and_key_header(fake_upstream, start_gateway, wire_fake):
    fake, gw = await gateway_for("azure", fake_upstream, start_gateway, wire_fake)
    async with gw.sdk() as sdk:
        await sdk.chat.completions.create(model="up/m", messages=[USER])
    path, headers, _ = fake.raw[-1]
    assert path == "/openai/deployments/dep-m/chat/completions?api-version=2024-10-21"
    assert headers["api-key"] == "sk-upstream-primary-key" and "Authorization" not in headers


@pytest.mark.parametrize("kind", ["anthropic", "gemini", "ollama"])
async def test_translated_answers_carry_a_null_refusal(kind, fake_upstream, start_gateway, wire_fake, http):
    _, gw = await gateway_for(kind, fake_upstream, start_gateway, wire_fake)
    for extra in ({}, {"tools": [WEATHER]}):  # a text answer and a tool call
        async with http.post(
            gw.url + "/v1/chat/completions", headers=bearer(), json={"model": "up/m", "messages": [USER], **extra}
        ) as resp:
            assert resp.status == 200
            message = (await resp.json())["choices"][0]["message"]
        assert "refusal" in message and message["refusal"] is None, message  # OpenAI's schema requires the key


@pytest.mark.parametrize("kind", ["gemini", "ollama"])
async def test_translated_embeddings_come_in_the_encoding_asked(kind, fake_upstream, start_gateway, wire_fake, http):
    _, gw = await gateway_for(kind, fake_upstream, start_gateway, wire_fake)
    body = {"model": "up/m", "input": ["a", "bcd"]}
    vectors = {}
    for encoding in ("base64", "float", None):
        async with http.post(
            gw.url + "/v1/embeddings", headers=bearer(), json={**body, "encoding_format": encoding}
        ) as resp:
            assert resp.status == 200
            vectors[encoding] = [d["embedding"] for d in (await resp.json())["data"]]
    assert vectors["float"] == vectors[None] == [[0.5, 1.0], [0.5, 3.0]]
    assert all(isinstance(v, str) for v in vectors["base64"])
    assert [list(struct.unpack("<2f", base64.b64decode(v))) for v in vectors["base64"]] == [[0.5, 1.0], [0.5, 3.0]]
    async with gw.sdk() as sdk:  # the SDK asks for base64 unless told otherwise, and decodes it
        default = await sdk.embeddings.create(model="up/m", input="bcd")
        as_text = await sdk.embeddings.create(model="up/m", input="bcd", encoding_format="base64")
    assert default.data[0].embedding == [0.5, 3.0]
    assert struct.unpack("<2f", base64.b64decode(as_text.data[0].embedding)) == (0.5, 3.0)
