"""OpenAI's Responses API (``POST /v1/responses``) spoken over the chat completions every provider serves.

Three pure parts: :func:`to_chat` reads a Responses request (after the conversation of the response it
continues, if any) into a chat completions body; :func:`to_response` turns a chat completion into a
``response`` object; :class:`ResponseStream` turns a stream of chat chunks into the Responses API's
typed events. What cannot translate is refused with a 400 that names the parameter, or dropped where
the Responses API treats it as a hint only (README: "OpenAI Responses: what translates").
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway import jsonx
from gateway.errors import InvalidRequest, UpstreamInvalidResponse

# top-level keys read into the chat body, kept for the response object, or dropped as hints
_TRANSLATED = frozenset(
    {"model", "input", "instructions", "tools", "tool_choice", "max_output_tokens", "temperature", "top_p"}
    | {"text", "reasoning", "stream", "parallel_tool_calls", "user", "metadata", "store", "previous_response_id"}
)
# hints with no effect on what a translated answer can say: accepted and not sent
_HINTS = frozenset(
    {"service_tier", "prompt_cache_key", "prompt_cache_retention", "safety_identifier", "max_tool_calls"}
    | {"stream_options", "include", "truncation", "background"}
)
# what `include` may ask for without asking the translation for data it does not have
_INCLUDE_DROPPED = frozenset({"reasoning.encrypted_content"})
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    """An id in OpenAI's style: ``resp_...``, ``msg_...``, ``fc_...``."""
    return f"{prefix}_{secrets.token_hex(24)}"


@dataclass(frozen=True)
class ResponsesRequest:
    """A Responses request, read: the chat body to send through the chain, the conversation it holds
    (as Responses items, for the store), and the settings a response object repeats."""

    chat: dict[str, Any]
    items: list[dict[str, Any]]  # the previous response's conversation, then this request's input
    echo: dict[str, Any]
    stream: bool
    store: bool
    previous_response_id: str | None


def _unsupported(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="unsupported_parameter")


def _invalid(param: str, expected: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value for `{param}`: expected {expected}.", param=param, code="invalid_value")


def _check(value: Any, kind: type | tuple[type, ...], param: str, expected: str) -> Any:
    """``value`` if it is of ``kind`` (a bool is no number here), else a 400 naming ``param``."""
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise _invalid(param, expected)
    if not isinstance(value, kind):
        raise _invalid(param, expected)
    return value


def _text_field(item: Mapping[str, Any], key: str, path: str) -> str:
    return _check(item.get(key), str, f"{path}.{key}", "a string")


def to_chat(body: Mapping[str, Any], previous: Sequence[dict[str, Any]] = ()) -> ResponsesRequest:
    """Read a Responses request into a chat completions body. ``previous``: the stored conversation of
    the response named by ``previous_response_id`` (its :func:`conversation`), which comes first;
    its instructions do not carry over, as with OpenAI. Raises :class:`InvalidRequest` (400)."""
    _refuse_untranslatable(body)
    model = _check(body.get("model"), str, "model", "a string")
    items = input_items(body, previous)
    messages = _messages(items, len(previous))
    instructions = body.get("instructions")
    if instructions is not None:
        messages.insert(0, {"role": "system", "content": _check(instructions, str, "instructions", "a string")})
    if not messages:
        raise InvalidRequest("`input` is required.", param="input", code="missing_required_parameter")
    chat: dict[str, Any] = {"model": model, "messages": messages, **_sampling(body), **_tooling(body)}
    stream = _flag(body, "stream", False)
    if stream:
        chat["stream"], chat["stream_options"] = True, {"include_usage": True}
    previous_id = body.get("previous_response_id")
    if previous_id is not None:
        _check(previous_id, str, "previous_response_id", "a string")
    store = _flag(body, "store", True)
    return ResponsesRequest(chat, items, _echo(body, store), stream, store, previous_id)


def _refuse_untranslatable(body: Mapping[str, Any]) -> None:
    for key in body:
        if key not in _TRANSLATED and key not in _HINTS:
            raise InvalidRequest(
                f"Unknown or untranslatable parameter: `{key}`.", param=key, code="unsupported_parameter"
            )
    if body.get("background") is True:
        raise _unsupported("background", "Background responses are not supported by this gateway.")
    if body.get("truncation") not in (None, "disabled"):
        raise _unsupported("truncation", "Only `truncation: disabled` is supported by this gateway.")
    include = body.get("include") or []
    for i, value in enumerate(_check(include, list, "include", "a list of strings")):
        if value not in _INCLUDE_DROPPED:
            raise _unsupported(f"include[{i}]", f"`include` value {value!r} is not supported by this gateway.")


def _flag(body: Mapping[str, Any], key: str, default: bool) -> bool:
    value = body.get(key)
    return default if value is None else bool(_check(value, bool, key, "true or false"))


def input_items(body: Mapping[str, Any], previous: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The conversation a request holds, as Responses items: ``previous`` (the stored conversation of
    the response it continues), then its ``input``."""
    return [*previous, *_input_items(body.get("input"))]


def continued(body: Mapping[str, Any], previous: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``body`` for an upstream that serves the Responses API itself: as sent, except that a
    ``previous_response_id`` (the gateway's own id, which no upstream knows) becomes its stored
    conversation, ``previous``, before the input. The stored items go without the ids the gateway or
    another upstream gave them; reasoning items keep theirs (the upstream that made them needs it)."""
    if body.get("previous_response_id") is None:
        return dict(body)
    out = {key: value for key, value in body.items() if key != "previous_response_id"}
    earlier = [_without_id(item) if _drops_id(item) else item for item in previous]
    out["input"] = [*earlier, *_input_items(body.get("input"))]
    return out


def _drops_id(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") != "reasoning"


def _without_id(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key != "id"}


def _input_items(raw: Any) -> list[dict[str, Any]]:
    """The input as Responses items: a string is one user message."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
    return list(_check(raw, list, "input", "a string or a list of items"))


def _messages(items: list[dict[str, Any]], first_input: int) -> list[dict[str, Any]]:
    """Chat messages from Responses items; an item's path is ``input[i]`` (counted from the request's
    own input) or, for one of the previous response's, ``previous_response_id``."""
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        path = f"input[{i - first_input}]" if i >= first_input else "previous_response_id"
        _check(item, dict, path, "an object")
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, path))
        elif kind == "function_call":
            _add_call(out, item, path)
        elif kind == "function_call_output":
            out.append(_tool_output(item, path))
        elif kind != "reasoning":  # reasoning items are context for the model that made them: dropped
            raise _unsupported(f"{path}.type", f"Input items of type {kind!r} cannot be translated by this gateway.")
    return out


def _message(item: Mapping[str, Any], path: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "system", "developer", "assistant"):
        raise _invalid(f"{path}.role", "one of user, system, developer, assistant")
    content = item.get("content")
    if isinstance(content, str):
        parts = [{"type": "text", "text": content}]
    else:
        parts = [
            _part(part, f"{path}.content[{j}]")
            for j, part in enumerate(_check(content, list, f"{path}.content", "a string or a list of parts"))
        ]
    if role == "user":
        return {"role": "user", "content": parts[0]["text"] if len(parts) == 1 and "text" in parts[0] else parts}
    if any("text" not in part for part in parts):
        raise _unsupported(f"{path}.content", f"Only user messages may carry images, not {role} messages.")
    # developer becomes system: every provider takes system, not every OpenAI-compatible server developer
    return {"role": "system" if role == "developer" else role, "content": "".join(p["text"] for p in parts)}


def _part(part: Any, path: str) -> dict[str, Any]:
    """A chat content part from a Responses one (assistant text comes back as ``output_text``)."""
    kind = _check(part, dict, path, "an object").get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": _text_field(part, "text", path)}
    if kind == "refusal":
        return {"type": "text", "text": _text_field(part, "refusal", path)}
    if kind == "input_image":
        if part.get("image_url") is None:
            raise _unsupported(
                f"{path}.file_id", "Images by `file_id` are not supported: send `image_url` (an http or data URL)."
            )
        image = {"url": _text_field(part, "image_url", path)}
        if part.get("detail") is not None:
            image["detail"] = _text_field(part, "detail", path)
        return {"type": "image_url", "image_url": image}
    raise _unsupported(f"{path}.type", f"Content parts of type {kind!r} cannot be translated by this gateway.")


def _add_call(out: list[dict[str, Any]], item: Mapping[str, Any], path: str) -> None:
    """A ``function_call`` item joins the assistant message before it (parallel calls are one message)."""
    call = {
        "id": _text_field(item, "call_id", path),
        "type": "function",
        "function": {"name": _text_field(item, "name", path), "arguments": _text_field(item, "arguments", path)},
    }
    if out and out[-1]["role"] == "assistant":
        out[-1].setdefault("tool_calls", []).append(call)
    else:
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _tool_output(item: Mapping[str, Any], path: str) -> dict[str, Any]:
    output = item.get("output")
    if not isinstance(output, str):
        parts = _check(output, list, f"{path}.output", "a string or a list of parts")
        texts = [_part(part, f"{path}.output[{j}]") for j, part in enumerate(parts)]
        if any("text" not in part for part in texts):
            raise _unsupported(f"{path}.output", "Function call outputs may carry text only.")
        output = "".join(part["text"] for part in texts)
    return {"role": "tool", "tool_call_id": _text_field(item, "call_id", path), "content": output}


def _sampling(body: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = _check(body[key], (int, float), key, "a number")
    if body.get("max_output_tokens") is not None:
        tokens = _check(body["max_output_tokens"], int, "max_output_tokens", "a positive integer")
        if tokens < 1:
            raise _invalid("max_output_tokens", "a positive integer")
        out["max_completion_tokens"] = tokens
    fmt = _response_format(body.get("text"))
    if fmt is not None:
        out["response_format"] = fmt
    reasoning = body.get("reasoning")
    if reasoning is not None and _check(reasoning, dict, "reasoning", "an object").get("effort") is not None:
        out["reasoning_effort"] = _text_field(reasoning, "effort", "reasoning")
    if body.get("user") is not None:
        out["user"] = _check(body["user"], str, "user", "a string")
    return out


def _response_format(text: Any) -> dict[str, Any] | None:
    """``text.format`` as chat's ``response_format`` (``text.verbosity`` is a hint: dropped)."""
    if text is None or _check(text, dict, "text", "an object").get("format") is None:
        return None
    fmt = _check(text["format"], dict, "text.format", "an object")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        raise _invalid("text.format.type", "one of text, json_object, json_schema")
    schema = {"name": _text_field(fmt, "name", "text.format")}
    schema["schema"] = _check(fmt.get("schema"), dict, "text.format.schema", "an object")
    schema.update({k: fmt[k] for k in ("strict", "description") if fmt.get(k) is not None})
    return {"type": "json_schema", "json_schema": schema}


def _tooling(body: Mapping[str, Any]) -> dict[str, Any]:
    tools = body.get("tools") or []
    out: dict[str, Any] = {}
    if tools:
        out["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(_check(tools, list, "tools", "a list"))]
        if body.get("parallel_tool_calls") is not None:  # chat refuses it without tools
            out["parallel_tool_calls"] = _check(
                body["parallel_tool_calls"], bool, "parallel_tool_calls", "true or false"
            )
    choice = body.get("tool_choice")
    if choice in ("auto", "none", "required"):
        out["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function":
        out["tool_choice"] = {"type": "function", "function": {"name": _text_field(choice, "name", "tool_choice")}}
    elif choice is not None:
        raise _unsupported("tool_choice", "Only auto, none, required and a function by name are supported.")
    return out


def _tool(tool: Any, path: str) -> dict[str, Any]:
    kind = _check(tool, dict, path, "an object").get("type")
    if kind != "function":
        raise _unsupported(
            f"{path}.type", f"Tools of type {kind!r} cannot be translated by this gateway: only function tools."
        )
    function = {"name": _text_field(tool, "name", path)}
    function.update({k: tool[k] for k in ("description", "parameters", "strict") if tool.get(k) is not None})
    return {"type": "function", "function": function}


def _echo(body: Mapping[str, Any], store: bool) -> dict[str, Any]:
    """The request's settings as a response object repeats them (the Responses API's defaults where unset)."""
    metadata = body.get("metadata") or {}
    if not all(isinstance(v, str) for v in _check(metadata, dict, "metadata", "an object").values()):
        raise _invalid("metadata", "an object of strings")
    reasoning = body.get("reasoning") or {}
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": metadata,
        "parallel_tool_calls": _flag(body, "parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": None},
        "store": store,
        "temperature": _default(body.get("temperature"), 1.0),
        "text": {"format": (body.get("text") or {}).get("format") or {"type": "text"}},
        "tool_choice": _default(body.get("tool_choice"), "auto"),
        "tools": body.get("tools") or [],
        "top_p": _default(body.get("top_p"), 1.0),
        "truncation": "disabled",
        "user": body.get("user"),
    }


def _default(value: Any, default: Any) -> Any:
    return default if value is None else value


def usage(chat_usage: Any) -> dict[str, Any] | None:
    """Chat's usage in the Responses API's names."""
    if not isinstance(chat_usage, dict):
        return None
    prompt, completion = chat_usage.get("prompt_tokens") or 0, chat_usage.get("completion_tokens") or 0
    cached = (chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (chat_usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": chat_usage.get("total_tokens") or prompt + completion,
    }


def chat_usage(response_usage: Any) -> dict[str, Any] | None:
    """A response's usage in chat's names: what usage records, prices and rate limits read."""
    if not isinstance(response_usage, dict):
        return None
    prompt, completion = _count(response_usage, "input_tokens"), _count(response_usage, "output_tokens")
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": _count(response_usage, "total_tokens") or prompt + completion,
    }
    details = response_usage.get("input_tokens_details")
    cached = _count(details, "cached_tokens") if isinstance(details, dict) else 0
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def _count(counts: Mapping[str, Any], key: str) -> int:
    value = counts.get(key)
    return value if type(value) is int and value > 0 else 0


def response_object(
    request: ResponsesRequest, response_id: str, created_at: int, model: str, status: str, output: list[Any]
) -> dict[str, Any]:
    """A ``response`` object; ``usage``, ``error`` and ``incomplete_details`` are the caller's to fill."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": None,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": output,
        "usage": None,
        **request.echo,
    }


def _finish(response: dict[str, Any], finish_reason: Any) -> None:
    """Status from chat's finish reason: cut short by the token limit or a filter is ``incomplete``.
    ``completed_at`` is set only when the status is ``completed``, as OpenAI documents it."""
    reason = _INCOMPLETE.get(finish_reason)
    response["status"] = "incomplete" if reason else "completed"
    response["completed_at"] = None if reason else int(time.time())
    response["incomplete_details"] = {"reason": reason} if reason else None


def to_response(
    answer: Mapping[str, Any], request: ResponsesRequest, response_id: str, created_at: int
) -> dict[str, Any]:
    """A chat completion (``model`` already the target that served it) as a ``response`` object."""
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamInvalidResponse("The upstream answer has no choices.")
    message = choices[0].get("message") or {}
    reason = choices[0].get("finish_reason")
    status = "incomplete" if reason in _INCOMPLETE else "completed"
    parts: list[dict[str, Any]] = []
    if isinstance(message.get("content"), str) and message["content"]:
        parts.append({"type": "output_text", "text": message["content"], "annotations": [], "logprobs": []})
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    output: list[dict[str, Any]] = []
    if parts:
        output.append({"id": new_id("msg"), "type": "message", "role": "assistant", "status": status, "content": parts})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append(_call_item(call.get("id"), function.get("name"), function.get("arguments"), "completed"))
    response = response_object(request, response_id, created_at, str(answer.get("model")), status, output)
    _finish(response, reason)
    response["usage"] = usage(answer.get("usage"))
    return response


def _call_item(call_id: Any, name: Any, arguments: Any, status: str) -> dict[str, Any]:
    return {
        "id": new_id("fc"),
        "type": "function_call",
        "status": status,
        "call_id": call_id if isinstance(call_id, str) and call_id else new_id("call"),
        "name": name if isinstance(name, str) else "",
        "arguments": arguments if isinstance(arguments, str) else "",
    }


def conversation(items: Sequence[dict[str, Any]], response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the store keeps for a later ``previous_response_id``: the request's items (``request.items``,
    or :func:`input_items` of a request sent natively), then the response's output."""
    return [*items, *response["output"]]


class ResponseStream:
    """One streamed response: chat chunks in, Responses events out, as SSE bytes ready to write.

    ``start`` (``response.created``, ``response.in_progress``), then ``feed`` for each batch of chat
    chunks, then ``finish`` (``response.completed`` or ``response.incomplete``) or, when the upstream
    fails mid-way, ``fail`` (``response.failed``). Text opens a ``message`` item, closed when a tool
    call begins or at the end; each tool call is a ``function_call`` item, closed at the end (chat
    streams may interleave the calls' argument deltas, and an item's ``done`` must be final).
    ``response`` is the response object as last sent, for the store.
    """

    def __init__(self, request: ResponsesRequest, response_id: str, created_at: int, model: str) -> None:
        self.response = response_object(request, response_id, created_at, model, "in_progress", [])
        self._output: list[dict[str, Any]] = self.response["output"]
        self._seq = 0
        self._text: list[str] = []  # the open message's text so far
        self._message: int | None = None  # the open message's output index
        self._calls: dict[Any, int] = {}  # chat's tool call index -> its item's output index
        self._finish_reason: Any = None
        self._usage: Any = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = jsonx.dumps({"type": kind, "sequence_number": self._seq, **fields})
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"

    def _added(self, item: dict[str, Any]) -> bytes:
        self._output.append(item)
        return self._event("response.output_item.added", output_index=len(self._output) - 1, item=item)

    def start(self) -> bytes:
        created = self._event("response.created", response=self.response)
        return created + self._event("response.in_progress", response=self.response)

    def feed(self, chunks: Iterable[Mapping[str, Any]]) -> bytes:
        out = bytearray()
        for chunk in chunks:
            if chunk.get("usage"):
                self._usage = chunk["usage"]
            for choice in chunk.get("choices") or ():
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    out += self._choice(choice)
        return bytes(out)

    def _choice(self, choice: Mapping[str, Any]) -> bytes:
        out = b""
        delta = choice.get("delta") or {}
        if isinstance(delta.get("content"), str) and delta["content"]:
            out += self._text_delta(delta["content"])
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                out += self._call_delta(call)
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
        return out

    def _text_delta(self, text: str) -> bytes:
        out = b""
        if self._message is None:
            item = {"id": new_id("msg"), "type": "message", "role": "assistant", "status": "in_progress"}
            out += self._added({**item, "content": []})
            self._message, self._text = len(self._output) - 1, []
            out += self._event("response.content_part.added", **self._where(), part=_text_part(""))
        self._text.append(text)
        return out + self._event("response.output_text.delta", **self._where(), delta=text, logprobs=[])

    def _where(self) -> dict[str, Any]:
        assert self._message is not None
        return {"item_id": self._output[self._message]["id"], "output_index": self._message, "content_index": 0}

    def _close_message(self, status: str) -> bytes:
        if self._message is None:
            return b""
        text, where, item = "".join(self._text), self._where(), self._output[self._message]
        item["content"], item["status"] = [_text_part(text)], status
        out = self._event("response.output_text.done", **where, text=text, logprobs=[])
        out += self._event("response.content_part.done", **where, part=_text_part(text))
        out += self._event("response.output_item.done", output_index=self._message, item=item)
        self._message = None
        return out

    def _call_delta(self, call: Mapping[str, Any]) -> bytes:
        function = call.get("function") or {}
        key = call.get("index", len(self._calls))
        out = b""
        if key not in self._calls:
            out += self._close_message("completed")
            out += self._added(_call_item(call.get("id"), function.get("name"), "", "in_progress"))
            self._calls[key] = len(self._output) - 1
        index = self._calls[key]
        item = self._output[index]
        if isinstance(function.get("name"), str) and not item["name"]:  # a name sent after the call's start
            item["name"] = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item["arguments"] += arguments
            out += self._event(
                "response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=arguments
            )
        return out

    def finish(self) -> bytes:
        """Close what is open; the final event carries the whole response."""
        _finish(self.response, self._finish_reason)
        status = self.response["status"]
        out = self._close_message(status)
        for index in self._calls.values():
            item = self._output[index]
            item["status"] = "completed"
            out += self._event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                name=item["name"],  # OpenAI's reference has it among the required fields
                output_index=index,
                arguments=item["arguments"],
            )
            out += self._event("response.output_item.done", output_index=index, item=item)
        self._calls = {}
        self.response["usage"] = usage(self._usage)
        return out + self._event(f"response.{status}", response=self.response)

    def fail(self, message: str, code: str = "server_error") -> bytes:
        """``response.failed`` with the error (``code``: one of the Responses API's error codes, such as
        ``server_error`` or ``rate_limit_exceeded``); what was streamed stays in ``output``, unfinished."""
        if self._message is not None:
            self._output[self._message]["content"] = [_text_part("".join(self._text))]
        for item in self._output:
            if item["status"] == "in_progress":
                item["status"] = "incomplete"
        self.response["status"] = "failed"
        self.response["error"] = {"code": code, "message": message}
        self.response["usage"] = usage(self._usage)
        return self._event("response.failed", response=self.response)


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
