"""Each translating adapter against the example bodies its provider publishes (``fixtures/``, sources in
its README), not against our own fakes: the request it builds, the answer and the stream it reads back.

Pure tests: the adapters' translation methods are called directly, with no network. Streams are read
from the recorded bytes by the readers the adapters use (:class:`providers.transport.sse.EventReader`,
:class:`providers.transport.sse.LineReader`), so reading SSE and NDJSON is tested on real bytes too.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from gateway.config import ProviderConfig
from providers.anthropic import AnthropicProvider
from providers.base import ProviderError, UpstreamUnavailable
from providers.gemini import GeminiProvider
from providers.native import TranslatingProvider, _event
from providers.ollama import OllamaProvider
from providers.transport.sse import EventReader, LineReader
from tests.providers.test_contract import USER, config

FIXTURES = Path(__file__).parent / "fixtures"


def adapter(cls: type[TranslatingProvider], kind: str) -> TranslatingProvider:
    # the translation methods never touch the session
    return cls(ProviderConfig(name="up", type=kind, base_url="http://127.0.0.1:9"), None)  # type: ignore[arg-type]


def recorded(name: str) -> Any:
    return json.loads((FIXTURES / name).read_bytes())


def events(name: str, reader: type[EventReader]) -> list[dict[str, Any]]:
    """The events of a recorded stream as ``reader`` reads them: the complete units, then what is left
    when the stream ends (as :meth:`EventReader.batch` does at the end of the body)."""
    units, rest = reader._parse((FIXTURES / name).read_bytes())
    last = reader._item(rest)
    return [_event(unit) for unit in [*units, *([] if last is None else [last])]]


def translate(provider: TranslatingProvider, name: str, reader: type[EventReader]) -> list[dict[str, Any]]:
    """The OpenAI chunks for a recorded stream, fed as ``Provider.infer_stream`` feeds them."""
    translator = provider.translator("m")
    chunks: list[dict[str, Any]] = []
    for event in events(name, reader):
        chunks += translator.feed(event)
        if translator.done:
            return chunks
    return chunks + translator.end()


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


def content(chunks: list[dict[str, Any]]) -> str:
    return "".join(d.get("content") or "" for d in deltas(chunks))


def finish_reasons(chunks: list[dict[str, Any]]) -> list[str]:
    return [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]


def usages(chunks: list[dict[str, Any]]) -> list[dict[str, int]]:
    return [c["usage"] for c in chunks if "usage" in c]


def calls_of(chunks: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
    """The tool calls of a stream reassembled as an OpenAI client does: by index, arguments concatenated."""
    calls: dict[int, dict[str, str]] = {}
    for delta in deltas(chunks):
        for piece in delta.get("tool_calls") or []:
            call = calls.setdefault(piece["index"], {"id": "", "name": "", "arguments": ""})
            call["id"] += piece.get("id") or ""
            call["name"] += piece.get("function", {}).get("name") or ""
            call["arguments"] += piece.get("function", {}).get("arguments") or ""
    return calls


def check_stream_frame(chunks: list[dict[str, Any]]) -> None:
    """What every OpenAI stream holds: one id and model throughout, the role first, one finish, the usage last."""
    assert {c["id"] for c in chunks} == {chunks[0]["id"]} and {c["model"] for c in chunks} == {"m"}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert deltas(chunks)[0] == {"role": "assistant", "content": ""}
    assert len(finish_reasons(chunks)) == 1 and chunks[-1]["choices"] == []


def check_answer(answer: dict[str, Any], text: str | None, finish: str, usage: tuple[int, int]) -> dict[str, Any]:
    """The OpenAI chat.completion's frame and message; returns the message."""
    assert answer["object"] == "chat.completion" and answer["model"] == "m"
    (choice,) = answer["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == finish
    message = choice["message"]
    assert message["role"] == "assistant" and message["content"] == text and message["refusal"] is None
    assert answer["usage"] == {
        "prompt_tokens": usage[0],
        "completion_tokens": usage[1],
        "total_tokens": usage[0] + usage[1],
    }
    return message


def check_call(call: dict[str, Any], name: str, arguments: dict[str, Any]) -> None:
    assert call["type"] == "function" and call["function"]["name"] == name and call["id"]
    assert isinstance(call["function"]["arguments"], str)  # OpenAI's arguments are a JSON text
    assert json.loads(call["function"]["arguments"]) == arguments


def tool(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


# --- Anthropic Messages ---------------------------------------------------------------------------

ANTHROPIC = adapter(AnthropicProvider, "anthropic")


def test_anthropic_request_is_the_documented_request():
    """The streaming tool-use request of Anthropic's docs, from the OpenAI request that means the same."""
    doc = recorded("anthropic/request_stream_tool_use.json")
    documented_tool = doc["tools"][0]
    body = {
        "model": "x",
        "max_tokens": 1024,
        "stream": True,
        "tool_choice": "required",
        "messages": [{"role": "user", "content": doc["messages"][0]["content"]}],
        "tools": [tool(documented_tool["name"], documented_tool["description"], documented_tool["input_schema"])],
    }
    sent = ANTHROPIC.payload("chat", body, doc["model"], stream=True)
    # a string content is the documented shorthand for one text block: the same request
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": doc["messages"][0]["content"]}]}]
    assert {**sent, "messages": doc["messages"]} == doc


def test_anthropic_answer_with_cache_usage():
    answer = ANTHROPIC.answer("chat", recorded("anthropic/messages_text.json"), "m")
    # the documented total input: input_tokens plus the tokens written to and read from the cache
    message = check_answer(answer, "Hi! My name is Claude.", "stop", (2095 + 2051 + 2051, 503))
    assert answer["id"] == "msg_013Zva2CMHLNnXjNJJKqJ2EF" and "tool_calls" not in message


def test_anthropic_answer_with_text_and_tool_use():
    answer = ANTHROPIC.answer("chat", recorded("anthropic/messages_tool_use.json"), "m")
    message = check_answer(answer, "I'll check the current weather in San Francisco for you.", "tool_calls", (0, 0))
    (call,) = message["tool_calls"]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9"
    check_call(call, "get_weather", {"location": "San Francisco, CA", "unit": "celsius"})


def test_anthropic_text_stream():
    chunks = translate(ANTHROPIC, "anthropic/stream_text.sse", EventReader)
    check_stream_frame(chunks)
    assert chunks[0]["id"] == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"
    assert content(chunks) == "Hello!" and finish_reasons(chunks) == ["stop"]
    assert usages(chunks) == [{"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40}]


def test_anthropic_tool_use_stream():
    """Text, then a tool_use block (content block 1) whose input comes as partial JSON; the recorded body
    ends without a blank line after its last event, which the reader must still deliver."""
    chunks = translate(ANTHROPIC, "anthropic/stream_tool_use.sse", EventReader)
    check_stream_frame(chunks)
    assert content(chunks) == "Okay, let's check the weather for San Francisco, CA:"
    calls = calls_of(chunks)
    assert list(calls) == [0]  # the first tool call, whatever its content block index
    assert calls[0]["id"] == "toolu_01T1x1fJ34qAmk2tNTrN7Up6" and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert finish_reasons(chunks) == ["tool_calls"]
    assert usages(chunks) == [{"prompt_tokens": 472, "completion_tokens": 89, "total_tokens": 561}]


def test_anthropic_overloaded_error_event():
    (event,) = events("anthropic/stream_error_overloaded.sse", EventReader)
    translator = ANTHROPIC.translator("m")
    with pytest.raises(ProviderError) as failure:
        translator.feed(event)
    # an overloaded upstream is unavailable for now, not a refusal of the request: the next target may serve it
    assert type(failure.value) is UpstreamUnavailable and failure.value.retryable
    assert "Overloaded" in failure.value.reason


# --- Gemini generateContent / streamGenerateContent -----------------------------------------------

GEMINI = adapter(GeminiProvider, "gemini")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def test_gemini_request_matches_the_documented_request():
    """The function-calling request of Google's cookbook, from the OpenAI request that means the same. The
    cookbook writes the API's lenient forms (single objects for lists, snake_case names, ``parameters``):
    compared after reading them as the API does, and ``parametersJsonSchema`` where we send full JSON Schema."""
    doc = recorded("gemini/request_function_calling.json")
    declarations = doc["tools"][0]["function_declarations"]
    body = {
        "model": "x",
        "messages": [{"role": "user", "content": doc["contents"]["parts"]["text"]}],
        "tools": [tool(d["name"], d["description"], d["parameters"]) for d in declarations],
    }
    sent = GEMINI.payload("chat", body, "gemini-pro", stream=False)
    assert sent["contents"] == [{"role": doc["contents"]["role"], "parts": [doc["contents"]["parts"]]}]
    (sent_tools,) = sent["tools"]
    assert list(sent_tools) == [_camel("function_declarations")]
    assert sent_tools["functionDeclarations"] == [
        {"name": d["name"], "description": d["description"], "parametersJsonSchema": d["parameters"]}
        for d in declarations
    ]
    assert set(sent) == {"contents", "tools"}


def test_gemini_answer_with_usage():
    answer = GEMINI.answer("chat", recorded("gemini/generate_content_text.json"), "m")
    text = (
        "```python\n# Example list to be sorted\nmy_list = [5, 3, 1, 2, 4]\n\n# Sort the list in ascending order"
        " using the sort() method\nmy_list.sort()\n\n# Print the sorted list\nprint(my_list)\n```\n\nOutput:\n\n"
        "```\n[1, 2, 3, 4, 5]\n```"
    )
    assert "tool_calls" not in check_answer(answer, text, "stop", (9, 87))


def test_gemini_answer_with_a_function_call():
    answer = GEMINI.answer("chat", recorded("gemini/generate_content_function_call.json"), "m")
    # no usageMetadata in the recorded answer: no usage, rather than a guess
    message = check_answer(answer, None, "tool_calls", (0, 0))
    (call,) = message["tool_calls"]
    check_call(call, "find_theaters", {"movie": "Barbie", "location": "Mountain View, CA"})


def test_gemini_stream_whose_every_event_has_a_finish_reason():
    """Google's recorded stream carries ``finishReason: STOP`` on every event, not only on the last: the
    answer is all six pieces, and it finishes once, at the end of the stream."""
    recorded_events = events("gemini/stream_generate_content.sse", EventReader)
    pieces = [e["candidates"][0]["content"]["parts"][0]["text"] for e in recorded_events]
    assert len(pieces) == 6 and all(e["candidates"][0]["finishReason"] == "STOP" for e in recorded_events)
    chunks = translate(GEMINI, "gemini/stream_generate_content.sse", EventReader)
    check_stream_frame(chunks)
    assert content(chunks) == "".join(pieces)
    assert content(chunks).endswith("their love for each other and for adventure stronger than ever.")
    assert finish_reasons(chunks) == ["stop"]
    assert usages(chunks) == [{"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}]


async def test_gemini_recorded_stream_through_the_gateway(fake_upstream, start_gateway):
    """The recorded bytes served by a plain aiohttp app in Gemini's place, a few hundred bytes a write:
    the openai SDK gets the whole answer from the upstream, finished once."""
    raw = (FIXTURES / "gemini/stream_generate_content.sse").read_bytes()

    async def serve(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for at in range(0, len(raw), 700):
            await resp.write(raw[at : at + 700])
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        upstream = SimpleNamespace(base_url=f"http://127.0.0.1:{runner.addresses[0][1]}")
        gw = await start_gateway(config("gemini", upstream, await fake_upstream("backup")))
        async with gw.sdk() as sdk:
            stream = await sdk.chat.completions.create(model="up/m", messages=[USER], stream=True)
            chunks = [chunk async for chunk in stream]
    finally:
        await runner.cleanup()
    pieces = [
        e["candidates"][0]["content"]["parts"][0]["text"]
        for e in events("gemini/stream_generate_content.sse", EventReader)
    ]
    assert {c.model for c in chunks} == {"up/m"}  # served by the upstream, no fallback
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "".join(pieces)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


def test_gemini_stream_cut_before_any_finish_reason_is_invalid():
    """A stream that ends before any event said it finished is still an interrupted one."""
    translator = GEMINI.translator("m")
    first = events("gemini/stream_generate_content.sse", EventReader)[0]
    first["candidates"][0].pop("finishReason")
    translator.feed(first)
    with pytest.raises(ProviderError) as failure:
        translator.end()
    assert failure.value.kind == "invalid"


# --- Ollama /api/chat, /api/embed -----------------------------------------------------------------

OLLAMA = adapter(OllamaProvider, "ollama")


def test_ollama_request_is_the_documented_request():
    doc = recorded("ollama/request_chat_tools.json")
    body = {"model": "x", "messages": doc["messages"], "tools": doc["tools"]}
    assert OLLAMA.payload("chat", body, doc["model"], stream=False) == doc


def test_ollama_answer():
    answer = OLLAMA.answer("chat", recorded("ollama/chat.json"), "m")
    # no done_reason in the documented answer: a finished answer stopped
    assert "tool_calls" not in check_answer(answer, "Hello! How are you today?", "stop", (26, 298))


def test_ollama_answer_with_tool_calls():
    answer = OLLAMA.answer("chat", recorded("ollama/chat_tool_calls.json"), "m")
    message = check_answer(answer, None, "tool_calls", (122, 33))
    (call,) = message["tool_calls"]
    check_call(call, "get_current_weather", {"format": "celsius", "location": "Paris, FR"})


def test_ollama_stream():
    """The documented stream: a piece of text, then the final object, which has no message at all."""
    chunks = translate(OLLAMA, "ollama/chat_stream.ndjson", LineReader)
    check_stream_frame(chunks)
    assert content(chunks) == "The" and finish_reasons(chunks) == ["stop"]
    assert usages(chunks) == [{"prompt_tokens": 26, "completion_tokens": 282, "total_tokens": 308}]


@pytest.mark.parametrize(
    "name, inputs",
    [
        ("embed.json", "Why is the sky blue?"),
        ("embed_multiple.json", ["Why is the sky blue?", "Why is the grass green?"]),
    ],
)
def test_ollama_embeddings(name, inputs):
    doc = recorded("ollama/" + name)
    assert OLLAMA.payload("embeddings", {"model": "x", "input": inputs}, "all-minilm", stream=False) == {
        "model": "all-minilm",
        "input": inputs,
    }
    answer = OLLAMA.answer("embeddings", doc, "m")
    assert answer["object"] == "list" and answer["model"] == "m"
    assert [d["embedding"] for d in answer["data"]] == doc["embeddings"]
    assert [(d["object"], d["index"]) for d in answer["data"]] == [
        ("embedding", i) for i in range(len(doc["embeddings"]))
    ]
    tokens = doc.get("prompt_eval_count", 0)  # the multiple-input example reports no count
    assert answer["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
