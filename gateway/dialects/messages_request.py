"""Anthropic's Messages request (``POST /v1/messages``) as an OpenAI chat completions body, for a target
that does not speak Messages; and the estimate that answers ``count_tokens`` for such a target.

Three outcomes for each part of a request (the README's "Anthropic Messages: what translates" lists
them): translated; dropped, where Anthropic's own answer may equally ignore it (``cache_control``,
``thinking``, ``top_k``, ``service_tier``); refused with a 400 that names it, where dropping it would
change what the answer means (documents, server tools, files, unknown fields).
"""

from __future__ import annotations

import math
from typing import Any

from gateway import jsonx
from gateway.errors import InvalidRequest

#: top-level fields dropped: hints whose absence leaves an answer Anthropic itself could give. ``thinking``
#: asks for reasoning blocks within a budget Claude need not use, and clients only show them and send them
#: back; ``top_k`` is a sampling setting chat has no name for; ``service_tier`` picks a capacity pool
DROPPED = frozenset({"thinking", "top_k", "service_tier"})
#: the content blocks of assistant turns dropped: earlier reasoning, signed for Claude alone
DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
_FIELDS = frozenset(
    {"model", "messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences", "stream", "metadata"}
    | {"tools", "tool_choice"}
)
#: the response header that says a count_tokens answer is :func:`estimate_input_tokens`'s estimate (the
#: body stays Anthropic's ``{"input_tokens": N}``, which the SDK reads)
ESTIMATE_HEADER = "x-localrouter-estimate"
#: what count_tokens counts for an image: Anthropic's figure for an image at its largest size
IMAGE_TOKENS = 1600
CHARS_PER_TOKEN = 4


def invalid(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_value")


def unsupported(param: str, what: str) -> InvalidRequest:
    return InvalidRequest(
        f"{what} cannot be translated for a model served by a provider that does not speak Anthropic's Messages API.",
        param=param,
        code="unsupported_parameter",
    )


def check(body: Any) -> dict[str, Any]:
    """``body`` if it has what every Messages request needs (model, messages, max_tokens), else a 400;
    for both paths, translated and native, so that a bad request fails before any upstream is called."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_value")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise invalid("model", "model: Field required (a string).")
    if not isinstance(body.get("messages"), list):
        raise invalid("messages", "messages: Field required (an array).")
    limit = body.get("max_tokens")
    if type(limit) is not int or limit < 1:
        raise invalid("max_tokens", "max_tokens: Field required (an integer >= 1).")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise invalid("stream", "stream: must be a boolean.")
    return body


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The chat completions body for a Messages request; :class:`InvalidRequest` (400) for a malformed
    part or one that cannot translate."""
    check(body)
    for key in body:
        if key not in _FIELDS and key not in DROPPED:
            raise unsupported(key, f"'{key}'")
    messages = _system(body.get("system"))
    for i, message in enumerate(body["messages"]):
        messages.extend(_message(message, f"messages[{i}]"))
    out: dict[str, Any] = {"model": body["model"], "messages": messages, "max_tokens": body["max_tokens"]}
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = _unit(body[key], key)
    if body.get("stop_sequences"):
        out["stop"] = _strings(body["stop_sequences"], "stop_sequences")
    user = _user(body.get("metadata"))
    if user is not None:
        out["user"] = user
    out.update(_tools(body.get("tools"), body.get("tool_choice")))
    if body.get("stream"):
        out["stream"] = True
    return out


def stop_sequences(body: dict[str, Any]) -> tuple[str, ...]:
    """The request's stop sequences, for telling a stop sequence's end from a natural one in the answer."""
    stops = body.get("stop_sequences")
    return tuple(s for s in stops if isinstance(s, str)) if isinstance(stops, list) else ()


def _unit(value: Any, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise invalid(param, f"{param}: must be a number from 0 to 1.")
    return value


def _strings(value: Any, param: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise invalid(param, f"{param}: must be an array of strings.")
    return value


def _user(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise invalid("metadata", "metadata: must be an object.")
    for key in metadata:
        if key != "user_id":
            raise unsupported(f"metadata.{key}", f"'metadata.{key}'")
    user = metadata.get("user_id")
    if user is not None and not isinstance(user, str):
        raise invalid("metadata.user_id", "metadata.user_id: must be a string.")
    return user


def _system(system: Any) -> list[dict[str, Any]]:
    """The system prompt as one system message; text blocks joined by blank lines."""
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if not isinstance(system, list):
        raise invalid("system", "system: must be a string or an array of text blocks.")
    texts = [_text(block, f"system[{i}]") for i, block in enumerate(system)]
    return [{"role": "system", "content": "\n\n".join(texts)}] if texts else []


def _text(block: Any, param: str) -> str:
    if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
        raise invalid(param, f"{param}: must be a text block ({{'type': 'text', 'text': ...}}).")
    return block["text"]


def _blocks(content: Any, param: str) -> list[dict[str, Any]]:
    """A message's content as a list of blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(b, dict) for b in content):
        raise invalid(param, f"{param}: must be a string or an array of content blocks.")
    return content


def _message(message: Any, param: str) -> list[dict[str, Any]]:
    if not isinstance(message, dict):
        raise invalid(param, f"{param}: must be an object.")
    role = message.get("role")
    if role == "user":
        return _user_turn(message.get("content"), f"{param}.content")
    if role == "assistant":
        return _assistant_turn(message.get("content"), f"{param}.content")
    raise invalid(f"{param}.role", f"{param}.role: must be 'user' or 'assistant'.")


def _user_turn(content: Any, param: str) -> list[dict[str, Any]]:
    """Tool results first, as tool messages (chat wants them right after the assistant's calls), then the
    rest as one user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(_blocks(content, param)):
        p, kind = f"{param}[{i}]", block.get("type")
        if kind == "tool_result":
            results.append(_tool_result(block, p))
        elif kind == "text":
            parts.append({"type": "text", "text": _text(block, p)})
        elif kind == "image":
            parts.append(_image(block, p))
        else:
            raise unsupported(f"{p}.type", f"A {kind!r} content block")
    if not parts:
        return results
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [*results, {"role": "user", "content": parts[0]["text"]}]
    return [*results, {"role": "user", "content": parts}]


def _image(block: dict[str, Any], param: str) -> dict[str, Any]:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict):
        media, data = source.get("media_type"), source.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise invalid(f"{param}.source", f"{param}.source: a base64 source needs media_type and data.")
        url = f"data:{media};base64,{data}"
    elif kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise unsupported(f"{param}.source.type", f"An image source of type {kind!r}")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(block: dict[str, Any], param: str) -> dict[str, Any]:
    """A tool message. ``is_error`` is not sent: chat has no such flag (the content says what failed)."""
    if not isinstance(block.get("tool_use_id"), str):
        raise invalid(f"{param}.tool_use_id", f"{param}.tool_use_id: Field required.")
    content = block.get("content", "")
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            p = f"{param}.content[{j}]"
            if isinstance(part, dict) and part.get("type") != "text":
                raise unsupported(f"{p}.type", f"A {part.get('type')!r} block in a tool result")
            texts.append(_text(part, p))
        content = "\n\n".join(texts)
    elif not isinstance(content, str):
        raise invalid(f"{param}.content", f"{param}.content: must be a string or an array of text blocks.")
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": content}


def _assistant_turn(content: Any, param: str) -> list[dict[str, Any]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(_blocks(content, param)):
        p, kind = f"{param}[{i}]", block.get("type")
        if kind == "text":
            texts.append(_text(block, p))
        elif kind == "tool_use":
            calls.append(_tool_call(block, p))
        elif kind not in DROPPED_BLOCKS:
            raise unsupported(f"{p}.type", f"A {kind!r} content block")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    return [message]


def _tool_call(block: dict[str, Any], param: str) -> dict[str, Any]:
    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
        raise invalid(param, f"{param}: a tool_use block needs an id and a name.")
    args = block.get("input", {})
    if not isinstance(args, dict):
        raise invalid(f"{param}.input", f"{param}.input: must be an object.")
    return {
        "id": block["id"],
        "type": "function",
        "function": {"name": block["name"], "arguments": jsonx.dumps(args).decode()},
    }


def _tools(tools: Any, choice: Any) -> dict[str, Any]:
    """``tools``, ``tool_choice`` and ``parallel_tool_calls`` of the chat body."""
    out: dict[str, Any] = {}
    if tools:
        if not isinstance(tools, list):
            raise invalid("tools", "tools: must be an array.")
        out["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    if choice is None:
        return out
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in ("auto", "none"):
        out["tool_choice"] = kind
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "tool" and isinstance(choice, dict) and isinstance(choice.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise invalid("tool_choice", "tool_choice: must be {'type': 'auto' | 'any' | 'none' | 'tool', ...}.")
    if isinstance(choice, dict) and choice.get("disable_parallel_tool_use") is True and "tools" in out:
        out["parallel_tool_calls"] = False  # chat refuses the flag without tools
    return out


def _tool(tool: Any, param: str) -> dict[str, Any]:
    """A function tool. Anthropic's server tools (a ``type`` other than ``custom``) run at Anthropic and
    have no chat equivalent."""
    if not isinstance(tool, dict):
        raise invalid(param, f"{param}: must be an object.")
    if tool.get("type", "custom") != "custom":
        raise unsupported(f"{param}.type", f"The server tool {tool.get('type')!r}")
    if not isinstance(tool.get("name"), str) or not isinstance(tool.get("input_schema"), dict):
        raise invalid(param, f"{param}: a tool needs a name and an input_schema object.")
    function: dict[str, Any] = {"name": tool["name"], "parameters": tool["input_schema"]}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    if tool.get("strict") is True:
        function["strict"] = True
    return {"type": "function", "function": function}


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """What ``count_tokens`` answers for a target that cannot count: the characters of the text the model
    reads (the system prompt; the messages' text, tool calls' input as JSON and tool results; each tool's
    name, description and input schema as JSON) divided by 4, rounded up, plus :data:`IMAGE_TOKENS` for
    each image. Any other block counts by the length of its JSON. An estimate, and the answer says so."""
    chars, images = _chars(body.get("system")), 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        for block in [content] if isinstance(content, str) else content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "image":
                images += 1
            else:
                chars += _chars(block)
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            chars += sum(_chars(tool.get(key)) for key in ("name", "description", "input_schema"))
    return math.ceil(chars / CHARS_PER_TOKEN) + images * IMAGE_TOKENS


def _chars(value: Any) -> int:
    """The characters of a string, a text block, a tool call's input or result, or else its JSON."""
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_chars(item) for item in value)
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "text":
            return _chars(value.get("text"))
        if kind == "tool_use":
            return _chars(value.get("name")) + _chars(jsonx.dumps(value.get("input", {})).decode())
        if kind == "tool_result":
            return _chars(value.get("content"))
    return len(jsonx.dumps(value))
