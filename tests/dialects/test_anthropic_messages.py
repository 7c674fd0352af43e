"""Anthropic's Messages API spoken to a chat target: the request translated to chat, the chat answer and
stream translated back, errors in Anthropic's shape, the count_tokens estimate.

Pure tests. The shapes that go back are checked by the official ``anthropic`` SDK's own models and
stream accumulator, and against the recorded example bodies of Anthropic's API reference
(``tests/providers/fixtures/anthropic``); a round trip goes through the gateway's real Anthropic adapter.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent

from gateway.dialects import messages_reply as reply
from gateway.dialects import messages_request as request
from gateway.errors import GatewayError, InvalidRequest, UpstreamInvalidResponse
from providers.anthropic import AnthropicProvider
from providers.transport.sse import EventReader
from tests.providers.test_recorded_fixtures import adapter, events, recorded, translate

WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
PNG = "iVBORw0KGgo="
EVENTS = pydantic.TypeAdapter(RawMessageStreamEvent)


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "up/m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **fields}


def refused(fields: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        request.to_chat(body(**fields))
    return caught.value


# --- the request ------------------------------------------------------------------------------


def test_the_recorded_tool_use_request_translates():
    sent = recorded("anthropic/request_stream_tool_use.json")
    chat = request.to_chat(sent)
    assert chat == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "What is the weather like in San Francisco?"}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Get the current weather in a given location",
                    "parameters": sent["tools"][0]["input_schema"],
                },
            }
        ],
        "tool_choice": "required",
        "stream": True,
    }


def test_system_text_blocks_become_one_system_message_and_cache_control_is_dropped():
    system = [
        {"type": "text", "text": "You are a coding agent.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Be brief."},
    ]
    chat = request.to_chat(body(system=system))
    assert chat["messages"][0] == {"role": "system", "content": "You are a coding agent.\n\nBe brief."}
    assert request.to_chat(body(system="Be brief."))["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "cache_control" not in json.dumps(chat)


def test_text_and_image_blocks_become_content_parts():
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What are these?", "cache_control": {"type": "ephemeral"}},
    ]
    chat = request.to_chat(body(messages=[{"role": "user", "content": content}]))
    assert chat["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "text", "text": "What are these?"},
            ],
        }
    ]


TOOL_CONVERSATION = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Lyon"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "rain"}]},
            {"type": "text", "text": "Thanks."},
        ],
    },
]


def test_a_tool_use_and_tool_result_conversation_translates():
    chat = request.to_chat(body(messages=TOOL_CONVERSATION, tools=[WEATHER]))
    assert chat["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Lyon"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "rain"},
        {"role": "user", "content": "Thanks."},
    ]


def test_the_conversation_comes_back_whole_through_the_anthropic_adapter():
    """Messages -> chat -> the gateway's chat-to-Anthropic adapter: the same conversation, in Anthropic's
    block form (a string content is a text block, a tool result's text blocks one string)."""
    conversation = json.loads(json.dumps(TOOL_CONVERSATION))
    conversation[2]["content"][1]["content"] = "rain"
    sent = body(messages=conversation, tools=[WEATHER], system="Be brief.", stop_sequences=["END"])
    again = adapter(AnthropicProvider, "anthropic").payload("chat", request.to_chat(sent), "m", False)

    def blocks(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                **m,
                "content": [{"type": "text", "text": m["content"]}] if isinstance(m["content"], str) else m["content"],
            }
            for m in messages
        ]

    assert blocks(again["messages"]) == blocks(conversation)
    assert again["tools"] == [WEATHER]
    assert (again["system"], again["stop_sequences"], again["max_tokens"]) == ("Be brief.", ["END"], 100)


@pytest.mark.parametrize(
    "choice, expected",
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "get_weather"},
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        ),
        ({"type": "auto", "disable_parallel_tool_use": True}, {"tool_choice": "auto", "parallel_tool_calls": False}),
        ({"type": "any", "disable_parallel_tool_use": False}, {"tool_choice": "required"}),
    ],
)
def test_tool_choice(choice, expected):
    chat = request.to_chat(body(tools=[WEATHER], tool_choice=choice))
    assert {k: chat[k] for k in ("tool_choice", "parallel_tool_calls") if k in chat} == expected


def test_parallel_tool_calls_is_not_sent_without_tools():
    chat = request.to_chat(body(tool_choice={"type": "auto", "disable_parallel_tool_use": True}))
    assert chat["tool_choice"] == "auto" and "parallel_tool_calls" not in chat and "tools" not in chat


def test_sampling_stop_sequences_user_and_stream():
    chat = request.to_chat(
        body(temperature=0.2, top_p=0.9, stop_sequences=["END", "STOP"], metadata={"user_id": "u-1"}, stream=True)
    )
    assert {k: chat[k] for k in ("temperature", "top_p", "stop", "user", "stream", "max_tokens")} == {
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END", "STOP"],
        "user": "u-1",
        "stream": True,
        "max_tokens": 100,
    }
    assert request.stop_sequences(body(stop_sequences=["END"])) == ("END",)
    assert "stream" not in request.to_chat(body(stream=False))


def test_hints_are_dropped():
    history = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "The user greets me.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Hello!"},
            ],
        },
        {"role": "user", "content": "again"},
    ]
    chat = request.to_chat(
        body(
            messages=history,
            thinking={"type": "enabled", "budget_tokens": 2000},
            top_k=5,
            service_tier="auto",
            tools=[{**WEATHER, "cache_control": {"type": "ephemeral"}}],
        )
    )
    assert not {"thinking", "top_k", "service_tier"} & chat.keys()
    assert chat["messages"][1] == {"role": "assistant", "content": "Hello!"}
    assert "cache_control" not in json.dumps(chat) and "signature" not in json.dumps(chat)


@pytest.mark.parametrize(
    "fields, param",
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "base64", "media_type": "application/pdf", "data": "x"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].type",
        ),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}
                ]
            },
            "messages[0].content[0].source.type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}],
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "content": [{"type": "server_tool_use", "id": "s", "name": "web_search"}]}
                ]
            },
            "messages[0].content[0].type",
        ),
        ({"container": "c-1"}, "container"),
        ({"mcp_servers": []}, "mcp_servers"),
        ({"metadata": {"user_id": "u", "team": "x"}}, "metadata.team"),
    ],
)
def test_what_cannot_translate_is_a_400_that_names_it(fields, param):
    err = refused(fields)
    assert (err.status, err.param, err.code) == (400, param, "unsupported_parameter")
    assert "cannot be translated" in err.message
    assert reply.error_body(err.status, err.message)["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "sent, param",
    [
        ({"model": "m", "messages": []}, "max_tokens"),
        ({"model": "m", "messages": [], "max_tokens": 0}, "max_tokens"),
        ({"model": "m", "messages": [], "max_tokens": True}, "max_tokens"),
        ({"messages": [], "max_tokens": 5}, "model"),
        ({"model": "m", "messages": "hi", "max_tokens": 5}, "messages"),
        ({"model": "m", "messages": [], "max_tokens": 5, "stream": "yes"}, "stream"),
        (body(temperature=1.5), "temperature"),
        (body(top_p="high"), "top_p"),
        (body(messages=[{"role": "system", "content": "x"}]), "messages[0].role"),
        (
            body(messages=[{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]),
            "messages[0].content[0].tool_use_id",
        ),
        (body(tool_choice={"type": "maybe"}), "tool_choice"),
        (body(stop_sequences="END"), "stop_sequences"),
        (body(tools=[{"name": "f"}]), "tools[0]"),
    ],
)
def test_a_malformed_request_is_a_400(sent, param):
    with pytest.raises(InvalidRequest) as caught:
        request.to_chat(sent)
    assert (caught.value.status, caught.value.param, caught.value.code) == (400, param, "invalid_value")


def test_count_tokens_estimate():
    sent = body(
        system="12345678",  # 8 characters
        messages=[
            {"role": "user", "content": "abcd"},  # 4
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}],
            },  # 1 + 7
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t", "content": "ok"},  # 2
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                ],
            },
        ],
        tools=[{"name": "f", "description": "d", "input_schema": {}}],  # 1 + 1 + 2
    )
    assert request.estimate_input_tokens(sent) == -(-(8 + 4 + 8 + 2 + 4) // 4) + request.IMAGE_TOKENS
    assert request.estimate_input_tokens(body(messages=[{"role": "user", "content": "abcde"}])) == 2


# --- the answer -------------------------------------------------------------------------------


def chat_answer(message: dict[str, Any], finish: str | None = "stop", **choice: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish, **choice}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
    }


def test_a_chat_answer_becomes_a_message_the_sdk_reads():
    message = reply.to_message(chat_answer({"content": "Hi! My name is Claude."}), "up/m")
    parsed = Message.model_validate(message, strict=True)
    assert parsed.id.startswith("msg_") and parsed.model == "up/m"
    assert [b.model_dump() for b in parsed.content] == [
        {"type": "text", "text": "Hi! My name is Claude.", "citations": None}
    ]
    assert (parsed.stop_reason, parsed.stop_sequence) == ("end_turn", None)
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens) == (7, 5)
    # the keys of Anthropic's own example answer, but for what only Anthropic knows
    assert set(message) == set(recorded("anthropic/messages_text.json"))


def test_tool_calls_become_tool_use_blocks():
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"location": "SF"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}},
    ]
    message = reply.to_message(chat_answer({"content": "Checking.", "tool_calls": calls}, "tool_calls"), "up/m")
    Message.model_validate(message, strict=True)
    example = recorded("anthropic/messages_tool_use.json")
    assert [set(b) for b in message["content"][:2]] == [set(b) for b in example["content"]]
    assert message["content"][1:] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "SF"}},
        {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
    ]
    assert message["stop_reason"] == "tool_use"


def test_tool_arguments_that_are_not_an_object_are_an_invalid_answer():
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"city": "Par'}}
    with pytest.raises(UpstreamInvalidResponse) as caught:
        reply.to_message(chat_answer({"content": None, "tool_calls": [call]}, "tool_calls"), "up/m")
    assert caught.value.status == 502 and "'f'" in caught.value.message
    with pytest.raises(UpstreamInvalidResponse):
        reply.to_message({"choices": []}, "up/m")


@pytest.mark.parametrize(
    "finish, extra, stop_reason, stop_sequence",
    [
        ("stop", {}, "end_turn", None),
        ("length", {}, "max_tokens", None),
        ("tool_calls", {}, "tool_use", None),
        ("function_call", {}, "tool_use", None),
        ("content_filter", {}, "refusal", None),
        (None, {}, "end_turn", None),
        ("something_new", {}, "end_turn", None),
        ("stop", {"stop_reason": "END"}, "stop_sequence", "END"),  # vLLM says which
        ("stop", {"matched_stop": "END"}, "stop_sequence", "END"),  # SGLang too
        ("stop", {"stop_reason": 128001}, "end_turn", None),  # a stop token, not a sequence
        ("stop", {"stop_reason": "OTHER"}, "end_turn", None),  # not one the client asked for
    ],
)
def test_every_stop_reason(finish, extra, stop_reason, stop_sequence):
    message = reply.to_message(chat_answer({"content": "x"}, finish, **extra), "up/m", stops=("END",))
    assert (message["stop_reason"], message["stop_sequence"]) == (stop_reason, stop_sequence)
    Message.model_validate(message, strict=True)


def test_a_refusal_is_a_refusal():
    message = reply.to_message(chat_answer({"content": None, "refusal": "I can't help with that."}), "up/m")
    assert message["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert message["stop_reason"] == "refusal"


def test_cached_prompt_tokens_are_cache_reads():
    answer = chat_answer({"content": "x"})
    answer["usage"] = {"prompt_tokens": 100, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 60}}
    usage = reply.to_message(answer, "up/m")["usage"]
    assert usage == {"input_tokens": 40, "output_tokens": 5, "cache_read_input_tokens": 60}


# --- the stream -------------------------------------------------------------------------------


def parse(stream: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each event; every one must be an event the SDK knows, name and type equal."""
    assert stream.endswith(b"\n\n")
    out = []
    for block in stream.decode().split("\n\n")[:-1]:
        head, data = block.split("\n")
        assert head.startswith("event: ") and data.startswith("data: ")
        name, doc = head[len("event: ") :], json.loads(data[len("data: ") :])
        assert doc["type"] == name
        if name == "ping":
            assert doc == {"type": "ping"}
        elif name != "error":
            EVENTS.validate_python(doc, strict=True)
        out.append((name, doc))
    return out


def accumulated(stream: list[tuple[str, dict[str, Any]]]) -> Any:
    """The message the anthropic SDK builds from the events, as ``messages.stream`` does."""
    snapshot, bufs = None, {}
    for name, doc in stream:
        if name == "ping":
            continue
        snapshot = accumulate_event(event=EVENTS.validate_python(doc), current_snapshot=snapshot, json_bufs=bufs)
    return snapshot


def encode(chunks: list[dict[str, Any]], stops: tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    encoder = reply.MessagesEncoder("up/m", stops)
    return parse(b"".join(encoder.feed(c) for c in chunks) + encoder.end())


def shapes(doc: Any) -> Any:
    """The keys of ``doc`` all the way down (values left out), to compare field shapes."""
    if isinstance(doc, dict):
        return {k: shapes(v) for k, v in doc.items() if k != "citations"}
    return type(doc).__name__ if doc is not None else None


@pytest.mark.parametrize("fixture", ["stream_text.sse", "stream_tool_use.sse"])
def test_a_recorded_stream_comes_back_as_it_was(fixture):
    """Anthropic's recorded stream -> the gateway's Anthropic adapter (chat chunks) -> the encoder: the
    same events, in the same order, of the same shapes (pings aside; an empty ``partial_json`` carries
    nothing), with the same text, tool input, stop reason and output tokens."""
    original = [e for e in events(f"anthropic/{fixture}", EventReader) if e["type"] != "ping"]
    original = [e for e in original if e.get("delta", {}).get("partial_json") != ""]
    again = [
        doc
        for name, doc in encode(translate(adapter(AnthropicProvider, "anthropic"), f"anthropic/{fixture}", EventReader))
        if name != "ping"
    ]
    assert [e["type"] for e in again] == [e["type"] for e in original]
    for mine, theirs in zip(again, original, strict=True):
        if mine["type"] in ("content_block_start", "content_block_delta", "content_block_stop"):
            assert mine == theirs
    start, start_theirs = again[0]["message"], original[0]["message"]
    assert shapes(start) == shapes(start_theirs) and start["model"] == "up/m" and start["id"].startswith("msg_")
    delta, delta_theirs = again[-2], original[-2]
    assert delta["delta"] == delta_theirs["delta"]
    assert delta["usage"]["output_tokens"] == delta_theirs["usage"]["output_tokens"]
    assert delta["usage"]["input_tokens"] == start_theirs["usage"]["input_tokens"]


def chunk(delta: dict[str, Any], finish: str | None = None, **choice: Any) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **choice}],
    }


USAGE = {
    "id": "c",
    "object": "chat.completion.chunk",
    "choices": [],
    "usage": {"prompt_tokens": 9, "completion_tokens": 4},
}


def test_a_text_and_tool_calls_stream_the_sdk_accumulates():
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Let me "}),
        chunk({"content": "check."}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        # a second call in one delta, whole (as the Gemini and Ollama adapters give them)
        chunk(
            {
                "tool_calls": [
                    {"index": 1, "id": "call_2", "type": "function", "function": {"name": "now", "arguments": "{}"}}
                ]
            }
        ),
        chunk({}, "tool_calls"),
        USAGE,
    ]
    stream = encode(chunks)
    assert [name for name, _ in stream] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    message = accumulated(stream)
    assert [b.model_dump(exclude_none=True) for b in message.content] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
    ]
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == ("tool_use", 9, 4)
    assert stream[-2][1]["usage"] == {"input_tokens": 9, "output_tokens": 4}


def test_interleaved_tool_arguments_land_on_their_own_call():
    chunks = [
        chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x"'}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": '{"y": 2}'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        chunk({}, "tool_calls"),
    ]
    message = accumulated(encode(chunks))
    assert [(b.id, b.input) for b in message.content] == [("a", {"x": 1}), ("b", {"y": 2})]


@pytest.mark.parametrize(
    "finish, extra, stop_reason, stop_sequence",
    [
        ("stop", {}, "end_turn", None),
        ("length", {}, "max_tokens", None),
        ("content_filter", {}, "refusal", None),
        ("stop", {"stop_reason": "END"}, "stop_sequence", "END"),
    ],
)
def test_the_stream_stop_reasons(finish, extra, stop_reason, stop_sequence):
    stream = encode([chunk({"content": "Hel"}), chunk({}, finish, **extra), USAGE], stops=("END",))
    assert stream[-2][1]["delta"] == {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
    message = accumulated(stream)
    assert (message.stop_reason, message.stop_sequence) == (stop_reason, stop_sequence)


def test_an_empty_answer_and_a_refusal_stream():
    assert [name for name, _ in encode([])] == ["message_start", "ping", "message_delta", "message_stop"]
    stream = encode([chunk({"refusal": "No."}), chunk({}, "stop")])
    assert accumulated(stream).content[0].text == "No." and stream[-2][1]["delta"]["stop_reason"] == "refusal"


def test_a_failure_mid_stream_is_an_error_event():
    encoder = reply.MessagesEncoder("up/m")
    started = encoder.feed(chunk({"content": "Hel"}))
    stream = parse(started + reply.error_event(503, "All providers failed."))
    assert stream[-1] == (
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "All providers failed."}},
    )
    # the same shape as Anthropic's own error event, recorded
    theirs = events("anthropic/stream_error_overloaded.sse", EventReader)[0]
    assert shapes(stream[-1][1]) == shapes(theirs)


# --- errors -----------------------------------------------------------------------------------

STATUSES = {
    400: ("invalid_request_error", anthropic.BadRequestError),
    401: ("authentication_error", anthropic.AuthenticationError),
    403: ("permission_error", anthropic.PermissionDeniedError),
    404: ("not_found_error", anthropic.NotFoundError),
    405: ("invalid_request_error", anthropic.APIStatusError),
    408: ("invalid_request_error", anthropic.APIStatusError),
    413: ("request_too_large", anthropic.APIStatusError),
    415: ("invalid_request_error", anthropic.APIStatusError),
    422: ("invalid_request_error", anthropic.UnprocessableEntityError),
    429: ("rate_limit_error", anthropic.RateLimitError),
    500: ("api_error", anthropic.InternalServerError),
    502: ("api_error", anthropic.InternalServerError),
    503: ("overloaded_error", anthropic.InternalServerError),
    504: ("timeout_error", anthropic.InternalServerError),
    529: ("overloaded_error", anthropic.InternalServerError),
}


@pytest.mark.parametrize("status", sorted(STATUSES))
def test_every_error_in_anthropics_shape_raises_the_sdks_class(status):
    kind, sdk_class = STATUSES[status]
    body_ = reply.error_body(status, "what happened", request_id="req_1")
    assert body_ == {"type": "error", "error": {"type": kind, "message": "what happened"}, "request_id": "req_1"}
    client = anthropic.Anthropic(api_key="unused", base_url="http://127.0.0.1:9")
    response = httpx2.Response(status, json=body_, request=httpx2.Request("POST", "http://127.0.0.1:9/v1/messages"))
    err = client._make_status_error_from_response(response)
    assert isinstance(err, sdk_class) and err.status_code == status
    assert "what happened" in str(err)


def test_the_gateways_errors_map_by_their_status():
    err: GatewayError = InvalidRequest("bad")
    assert reply.error_body(err.status, err.message) == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "bad"},
    }
    assert reply.error_type(418) == "invalid_request_error" and reply.error_type(599) == "api_error"
