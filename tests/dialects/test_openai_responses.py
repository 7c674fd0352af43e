"""The Responses dialect, pure: requests to chat bodies, chat answers and chunks back to Responses
objects and events, each checked against the official openai SDK's own models."""

from __future__ import annotations

import json

import openai
import pydantic
import pytest
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent

from gateway.dialects import openai_responses as dialect
from gateway.errors import InvalidRequest, UpstreamInvalidResponse

EVENTS = pydantic.TypeAdapter(ResponseStreamEvent)
PNG = "data:image/png;base64,iVBORw0KGgo="
# the function tool of OpenAI's function calling guide, in the Responses API's flat shape
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get current temperature for a given location.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
        "additionalProperties": False,
    },
    "strict": True,
}


def chat(body, previous=()):
    return dialect.to_chat(body, previous).chat


def completion(message, finish_reason="stop", usage=None):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "up/m",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}],
        "usage": usage or {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def answer(body, message, finish_reason="stop", usage=None, previous=()):
    request = dialect.to_chat(body, previous)
    response = dialect.to_response(completion(message, finish_reason, usage), request, "resp_1", 1700000000)
    Response.model_validate(response)  # the SDK's model: every required field there, every value of its type
    return request, response


# ---- requests


def test_string_input_and_instructions():
    body = chat({"model": "up/m", "instructions": "Be brief.", "input": "Tell me a story about a unicorn."})
    assert body == {
        "model": "up/m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tell me a story about a unicorn."},
        ],
    }


def test_message_items_with_text_and_image_parts():
    body = chat(
        {
            "model": "up/m",
            "input": [
                {"role": "developer", "content": "Talk like a pirate."},
                {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "S"}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "what is in this image?"},
                        {"type": "input_image", "image_url": PNG, "detail": "low"},
                        {"type": "input_image", "image_url": "https://example.com/a.png"},
                    ],
                },
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "A cat."}]},
                {"role": "user", "content": [{"type": "input_text", "text": "sure?"}]},
            ],
        }
    )
    assert body["messages"] == [
        {"role": "system", "content": "Talk like a pirate."},  # developer: every provider takes system
        {"role": "system", "content": "S"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is in this image?"},
                {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
        },
        {"role": "assistant", "content": "A cat."},
        {"role": "user", "content": "sure?"},  # one text part: a plain string, which every server takes
    ]


def test_function_calls_and_their_outputs():
    body = chat(
        {
            "model": "up/m",
            "input": [
                {"role": "user", "content": "Weather in Paris and Bogota?"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "get_weather",
                    "arguments": '{"location":"Paris"}',
                },
                {
                    "type": "function_call",
                    "call_id": "call_2",
                    "name": "get_weather",
                    "arguments": '{"location":"Bogota"}',
                },
                {"type": "function_call_output", "call_id": "call_1", "output": "14C"},
                {
                    "type": "function_call_output",
                    "call_id": "call_2",
                    "output": [{"type": "input_text", "text": "20C"}],
                },
            ],
        }
    )
    call = {"type": "function", "function": {"name": "get_weather"}}
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "call_1", **call, "function": {**call["function"], "arguments": '{"location":"Paris"}'}},
                {"id": "call_2", **call, "function": {**call["function"], "arguments": '{"location":"Bogota"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "14C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "20C"},
    ]


def test_a_function_call_without_text_before_it_is_an_assistant_message_of_its_own():
    body = chat({"model": "up/m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]})
    assert body["messages"] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        }
    ]


def test_settings_translate():
    body = chat(
        {
            "model": "up/m",
            "input": "hi",
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "parallel_tool_calls": False,
            "max_output_tokens": 300,
            "temperature": 0.2,
            "top_p": 0.9,
            "reasoning": {"effort": "low", "summary": "auto"},
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}},
            "metadata": {"team": "a"},
            "store": True,
            "user": "u1",
            "stream": True,
        }
    )
    assert body == {
        "model": "up/m",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_completion_tokens": 300,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
        },
        "reasoning_effort": "low",
        "user": "u1",
        "tools": [
            {
                "type": "function",
                "function": {k: WEATHER[k] for k in ("name", "description", "parameters", "strict")},
            }
        ],
        "parallel_tool_calls": False,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "stream": True,
        "stream_options": {"include_usage": True},  # the usage is what response.completed reports
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ({"format": {"type": "text"}}, None),
        ({"format": {"type": "json_object"}}, {"type": "json_object"}),
        ({"verbosity": "low"}, None),  # a hint: not sent
    ],
)
def test_text_format(text, expected):
    assert chat({"model": "up/m", "input": "hi", "text": text}).get("response_format") == expected


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_tool_choice_words_pass(choice):
    assert chat({"model": "up/m", "input": "hi", "tools": [WEATHER], "tool_choice": choice})["tool_choice"] == choice


def test_hints_are_dropped_and_what_is_only_kept_is_not_sent():
    body = chat(
        {
            "model": "up/m",
            "input": [
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "xyz"},
                {"role": "user", "content": "hi"},
            ],
            "include": ["reasoning.encrypted_content"],  # what Codex sends on every request
            "prompt_cache_key": "k",
            "service_tier": "auto",
            "safety_identifier": "s",
            "truncation": "disabled",
            "background": False,
            "parallel_tool_calls": True,  # without tools chat refuses it
            "metadata": {"a": "b"},
            "store": False,
        }
    )
    assert body == {"model": "up/m", "messages": [{"role": "user", "content": "hi"}]}


def refused(body):
    with pytest.raises(InvalidRequest) as info:
        dialect.to_chat({"model": "up/m", **body})
    err = info.value
    assert err.status == 400 and err.body()["error"]["type"] == "invalid_request_error"
    assert err.message and err.code
    return err.param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"input": "hi", "tools": [WEATHER, {"type": "file_search", "vector_store_ids": ["vs"]}]}, "tools[1].type"),
        ({"input": "hi", "tools": [{"type": "computer_use_preview"}]}, "tools[0].type"),
        ({"input": "hi", "tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
        ({"input": "hi", "background": True}, "background"),
        ({"input": "hi", "truncation": "auto"}, "truncation"),
        ({"input": "hi", "include": ["message.output_text.logprobs"]}, "include[0]"),
        ({"input": "hi", "conversation": "conv_1"}, "conversation"),
        ({"input": "hi", "prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"input": "hi", "top_logprobs": 2}, "top_logprobs"),
        ({"input": "hi", "frequency_penalty": 1}, "frequency_penalty"),  # not a Responses parameter at all
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_text", "text": "a"}, {"type": "input_image", "file_id": "file-1"}],
                    }
                ]
            },
            "input[0].content[1].file_id",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].type",
        ),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type"),
        ({"input": [{"role": "system", "content": [{"type": "input_image", "image_url": PNG}]}]}, "input[0].content"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]}, "input[0].output"),
        ({"input": 3}, "input"),
        ({"input": ["hi"]}, "input[0]"),
        ({}, "input"),
        ({"input": "hi", "temperature": "hot"}, "temperature"),
        ({"input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "hi", "max_output_tokens": True}, "max_output_tokens"),
        ({"input": "hi", "stream": "yes"}, "stream"),
        ({"input": "hi", "metadata": {"a": 1}}, "metadata"),
        ({"input": "hi", "text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"input": "hi", "text": {"format": {"type": "json_schema", "name": "w"}}}, "text.format.schema"),
        ({"input": "hi", "instructions": ["x"]}, "instructions"),
        ({"input": "hi", "previous_response_id": 7}, "previous_response_id"),
    ],
)
def test_refused_with_a_400_that_names_the_parameter(body, param):
    assert refused(body) == param


def test_model_is_required():
    with pytest.raises(InvalidRequest) as info:
        dialect.to_chat({"input": "hi"})
    assert info.value.param == "model"


# ---- answers


def test_text_answer_is_a_response_object_the_sdk_reads():
    body = {"model": "up/m", "input": "hi", "instructions": "Be brief.", "metadata": {"team": "a"}, "temperature": 0.5}
    usage = {
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    _, raw = answer(body, {"content": "Hello there.", "refusal": None}, usage=usage)
    response = Response.model_validate(raw)
    assert response.id == "resp_1" and response.object == "response" and response.status == "completed"
    assert response.model == "up/m" and response.created_at == 1700000000
    assert response.output_text == "Hello there."  # the SDK's own convenience over the output items
    message = response.output[0]
    assert message.type == "message" and message.id.startswith("msg_") and message.content[0].annotations == []
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (11, 7, 18)
    assert response.usage.input_tokens_details.cached_tokens == 4
    assert response.usage.output_tokens_details.reasoning_tokens == 2
    # the request's settings come back as the Responses API repeats them
    assert response.instructions == "Be brief." and response.metadata == {"team": "a"} and response.temperature == 0.5
    assert response.top_p == 1.0 and response.tool_choice == "auto" and response.parallel_tool_calls is True
    assert response.text is not None and response.text.format is not None and response.text.format.type == "text"
    assert raw["store"] is True and response.previous_response_id is None and response.error is None


def test_tool_call_answer():
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"location":"Rome"}'}},
    ]
    _, raw = answer(
        {"model": "up/m", "input": "hi", "tools": [WEATHER]}, {"content": None, "tool_calls": calls}, "tool_calls"
    )
    response = Response.model_validate(raw)
    assert [item.type for item in response.output] == ["function_call", "function_call"]
    first = response.output[0]
    assert first.type == "function_call" and first.call_id == "call_1" and first.name == "get_weather"
    assert first.arguments == '{"location":"Paris"}' and first.id is not None and first.id.startswith("fc_")
    assert response.tools[0].type == "function" and response.tools[0].name == "get_weather"


def test_text_then_tool_call_answer():
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    _, raw = answer({"model": "up/m", "input": "hi"}, {"content": "Let me check.", "tool_calls": [call]}, "tool_calls")
    assert [item["type"] for item in raw["output"]] == ["message", "function_call"]


def test_cut_short_by_the_token_limit_is_incomplete():
    _, raw = answer({"model": "up/m", "input": "hi", "max_output_tokens": 5}, {"content": "Once upon"}, "length")
    response = Response.model_validate(raw)
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens" and response.max_output_tokens == 5
    assert response.output[0].status == "incomplete"


def test_refusal_answer():
    _, raw = answer({"model": "up/m", "input": "hi"}, {"content": None, "refusal": "I can't help with that."})
    response = Response.model_validate(raw)
    assert response.output[0].type == "message" and response.output[0].content[0].type == "refusal"


def test_json_schema_format_is_echoed_as_the_sdk_reads_it():
    fmt = {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}
    _, raw = answer({"model": "up/m", "input": "hi", "text": {"format": fmt}}, {"content": "{}"})
    response = Response.model_validate(raw)
    assert response.text is not None and response.text.format is not None and response.text.format.type == "json_schema"


def test_an_answer_without_choices_is_the_upstreams_fault():
    request = dialect.to_chat({"model": "up/m", "input": "hi"})
    with pytest.raises(UpstreamInvalidResponse):
        dialect.to_response({"model": "up/m", "choices": []}, request, "resp_1", 1)


# ---- conversations


def test_tool_output_round_trip():
    """Ask with a tool, get a call, send its output after the stored conversation: the chat body of the
    second turn holds the whole exchange in chat's own shape."""
    first = {"model": "up/m", "input": "Weather in Paris?", "tools": [WEATHER], "instructions": "Be brief."}
    call = {
        "id": "call_9",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
    }
    request, response = answer(first, {"content": None, "tool_calls": [call]}, "tool_calls")
    stored = json.loads(json.dumps(dialect.conversation(request.items, response)))  # as it comes back from the store
    second = {
        "model": "up/m",
        "previous_response_id": "resp_1",
        "tools": [WEATHER],
        "input": [{"type": "function_call_output", "call_id": "call_9", "output": '{"temperature": 14}'}],
    }
    messages = chat(second, stored)["messages"]
    assert messages == [
        {"role": "user", "content": "Weather in Paris?"},  # the first turn's instructions do not carry over
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_9", "content": '{"temperature": 14}'},
    ]
    request2, response2 = answer(second, {"content": "It is 14C."}, previous=stored)
    assert response2["previous_response_id"] == "resp_1"
    assert [item["type"] for item in dialect.conversation(request2.items, response2)] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]


def test_previous_response_chains_carry_every_turn():
    request, response = answer({"model": "up/m", "input": "My name is Ada."}, {"content": "Hello Ada."})
    items = dialect.conversation(request.items, response)
    request, response = answer(
        {"model": "up/m", "input": "I like tea.", "previous_response_id": "resp_1"},
        {"content": "Noted."},
        previous=items,
    )
    items = dialect.conversation(request.items, response)
    third = chat({"model": "up/m", "input": "Who am I?", "instructions": "Answer in one word."}, items)
    assert third["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "I like tea."},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "Who am I?"},
    ]


# ---- streams


def chunk(delta=None, finish_reason=None, usage=None):
    doc = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "up/m"}
    doc["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    if usage is not None:
        doc["usage"] = usage
    return doc


def parse_sse(data: bytes):
    """The SSE bytes back into events; each ``event:`` line names the type its data carries."""
    assert data.endswith(b"\n\n")
    events = []
    for block in data[:-2].split(b"\n\n"):
        head, body = block.split(b"\n")
        assert head.startswith(b"event: ") and body.startswith(b"data: ")
        event = json.loads(body[len(b"data: ") :])
        assert head[len(b"event: ") :].decode() == event["type"]
        events.append(event)
    return events


def run_stream(batches, body=None, fail=None):
    request = dialect.to_chat(body or {"model": "up/m", "input": "hi", "stream": True})
    stream = dialect.ResponseStream(request, "resp_1", 1700000000, "up/m")
    data = stream.start() + b"".join(stream.feed(batch) for batch in batches)
    data += stream.fail(fail) if fail else stream.finish()
    events = parse_sse(data)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        EVENTS.validate_python(event)  # the SDK's own event models, strictly
    state = ResponseStreamState(input_tools=[], text_format=openai.omit)  # how the SDK assembles a stream
    handled = [out for event in events for out in state.handle_event(EVENTS.validate_python(event))]
    assert [e.type for e in handled] == [e["type"] for e in events]
    Response.model_validate(stream.response)
    if handled[-1].type == "response.completed":  # what the SDK's stream hands over as the final response
        assert handled[-1].response.output_text == Response.model_validate(stream.response).output_text
    return events, stream.response


USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def test_text_stream_events_in_order():
    batches = [
        [chunk({"role": "assistant", "content": ""})],
        [chunk({"content": "Hel"}), chunk({"content": "lo"})],
        [chunk({}, "stop"), chunk(usage=USAGE)],
    ]
    events, response = run_stream(batches)
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    item_id = events[2]["item"]["id"]
    assert all(e["item_id"] == item_id and e["output_index"] == 0 for e in events[3:8])
    assert events[6]["text"] == "Hello" and events[8]["item"]["content"][0]["text"] == "Hello"
    final = Response.model_validate(events[-1]["response"])
    assert final.status == "completed" and final.output_text == "Hello" and final.usage is not None
    assert final.usage.total_tokens == 8 and response == events[-1]["response"]


def test_tool_call_stream():
    def call(index, id=None, name=None, arguments=""):
        function = {"arguments": arguments} | ({"name": name} if name else {})
        return {
            "tool_calls": [{"index": index, **({"id": id, "type": "function"} if id else {}), "function": function}]
        }

    batches = [
        [chunk({"role": "assistant", "content": "Checking."})],
        [chunk(call(0, "call_a", "get_weather")), chunk(call(0, arguments='{"location":'))],
        [chunk(call(1, "call_b", "get_weather", '{"location":"Rome"}'))],
        [chunk(call(0, arguments='"Paris"}'))],  # a late delta for the first call: it was still open
        [chunk({}, "tool_calls", USAGE)],
    ]
    events, response = run_stream(batches, {"model": "up/m", "input": "hi", "tools": [WEATHER], "stream": True})
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",  # the message
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",  # closed when the first call begins
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",  # call_a
        "response.function_call_arguments.delta",
        "response.output_item.added",  # call_b
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[8]["item"]["call_id"] == "call_a" and events[8]["output_index"] == 1
    assert events[13]["arguments"] == '{"location":"Paris"}' and events[15]["arguments"] == '{"location":"Rome"}'
    final = Response.model_validate(events[-1]["response"])
    assert [(i.type, getattr(i, "call_id", None)) for i in final.output] == [
        ("message", None),
        ("function_call", "call_a"),
        ("function_call", "call_b"),
    ]
    assert response["output"][1]["arguments"] == '{"location":"Paris"}'


def test_stream_cut_short_by_the_token_limit_ends_incomplete():
    events, response = run_stream([[chunk({"content": "Once"})], [chunk({}, "length", USAGE)]])
    assert events[-1]["type"] == "response.incomplete"
    assert response["status"] == "incomplete" and response["incomplete_details"] == {"reason": "max_output_tokens"}


def test_stream_that_fails_mid_way_ends_with_response_failed():
    events, response = run_stream([[chunk({"content": "Once"})]], fail="The stream from up/m failed mid-way.")
    assert [e["type"] for e in events][-3:] == [
        "response.content_part.added",
        "response.output_text.delta",
        "response.failed",
    ]
    failed = Response.model_validate(events[-1]["response"])
    assert failed.status == "failed" and failed.error is not None and failed.error.code == "server_error"
    assert failed.error.message == "The stream from up/m failed mid-way."
    assert response["output"][0]["status"] == "incomplete" and response["output"][0]["content"][0]["text"] == "Once"


def test_empty_stream_completes_with_no_output():
    events, response = run_stream([[chunk({}, "stop", USAGE)]])
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.completed"]
    assert response["output"] == [] and response["usage"]["input_tokens"] == 5
