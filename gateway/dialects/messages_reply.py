"""What goes back to a client of Anthropic's Messages API when a chat target served it: the message for
a chat answer, the event stream for chat chunks, and every error in Anthropic's shape. Pure: bytes and
dicts out, no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from gateway import jsonx
from gateway.errors import UpstreamInvalidResponse

#: chat's finish_reason -> Anthropic's stop_reason (one chat does not list ends the turn)
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
#: the gateway's status -> Anthropic's error type (the anthropic SDK picks its exception by the status)
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status: any other client error is an invalid request (405,
    408, 415, 422), any other server error an ``api_error``."""
    return ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, message: str, request_id: str | None = None) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}}`` (and Anthropic's ``request_id`` when given)."""
    body: dict[str, Any] = {"type": "error", "error": {"type": error_type(status), "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def error_event(status: int, message: str) -> bytes:
    """The ``event: error`` that ends a stream which failed after it started."""
    return event("error", error_body(status, message))


def event(name: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event as Anthropic writes them: the event's name, then its JSON."""
    return b"event: " + name.encode() + b"\ndata: " + jsonx.dumps(data) + b"\n\n"


def message_id() -> str:
    return "msg_" + uuid.uuid4().hex[:24]


def usage_of(usage: Any) -> dict[str, int]:
    """Anthropic's usage for chat's: ``input_tokens`` leaves out the tokens read from a cache, which are
    ``cache_read_input_tokens`` (when the upstream reported them, as ``prompt_tokens_details``)."""
    use = _obj(usage)
    prompt, completion = _count(use.get("prompt_tokens")), _count(use.get("completion_tokens"))
    details = use.get("prompt_tokens_details")
    cached = min(_count(details.get("cached_tokens")), prompt) if isinstance(details, dict) else 0
    out = {"input_tokens": prompt - cached, "output_tokens": completion}
    if cached:
        out["cache_read_input_tokens"] = cached
    return out


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is an object, else an empty one: an optional part of another type is absent."""
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0


def stop_of(choice: dict[str, Any], stops: Sequence[str]) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence) of a finished choice. Chat says only ``stop`` when a stop sequence
    ended the answer; some servers say which one (vLLM's ``stop_reason``, SGLang's ``matched_stop``), and
    then it is Anthropic's ``stop_sequence``."""
    reason = choice.get("finish_reason")
    if reason == "stop":
        matched = choice.get("stop_reason", choice.get("matched_stop"))
        if isinstance(matched, str) and matched in stops:
            return "stop_sequence", matched
    return (STOP_REASONS.get(reason, "end_turn") if isinstance(reason, str) else "end_turn"), None


def to_message(answer: dict[str, Any], model: str, stops: Sequence[str] = ()) -> dict[str, Any]:
    """Anthropic's message for a chat.completion; ``model`` is the one to show. A tool call whose
    arguments are not a JSON object is an invalid answer (502): Anthropic's ``input`` is an object."""
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamInvalidResponse("The upstream's answer has no choices.")
    choice = choices[0]
    message = _obj(choice.get("message"))
    content: list[dict[str, Any]] = []
    for key in ("content", "refusal"):
        if isinstance(message.get(key), str) and message[key]:
            content.append({"type": "text", "text": message[key]})
    for call in message.get("tool_calls") or []:
        content.append(_tool_use(call))
    stop_reason, stop_sequence = stop_of(choice, stops)
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        stop_reason = "refusal"
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage_of(answer.get("usage")),
    }


def _tool_use(call: Any) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise UpstreamInvalidResponse("The upstream's answer has a tool call without a function name.")
    try:
        args = jsonx.loads(function.get("arguments") or "{}")
    except (ValueError, TypeError):
        args = None
    if not isinstance(args, dict):
        raise UpstreamInvalidResponse(f"The model's arguments for the tool {function['name']!r} are not a JSON object.")
    call_id = call.get("id") if isinstance(call.get("id"), str) else "toolu_" + uuid.uuid4().hex[:24]
    return {"type": "tool_use", "id": call_id, "name": function["name"], "input": args}


class MessagesEncoder:
    """One chat stream as Anthropic's event stream: :meth:`feed` each chat chunk, :meth:`end` once the
    stream finished; each returns the bytes to write (maybe none). A failure after the start is
    :func:`error_event` instead of :meth:`end`.

    ``message_start`` and a ``ping`` open the stream; text and each tool call become content blocks
    (``text_delta``; ``tool_use`` with ``input_json_delta``), each closed when the next one starts;
    ``message_delta`` carries the stop reason and the usage (chat reports it only at the end, so
    ``message_start`` says 0 tokens and ``message_delta`` the real counts, which the SDK takes), then
    ``message_stop``.
    """

    def __init__(self, model: str, stops: Sequence[str] = ()) -> None:
        self.model, self.stops = model, stops
        self.id = message_id()
        self.started = False
        self.blocks = 0  # content blocks started
        self.open: str | None = None  # the kind of the open block, always the last one started
        self.tools: dict[int, int] = {}  # chat tool call index -> content block index
        self.stop: tuple[str, str | None] = ("end_turn", None)
        self.refused = False
        self.usage: dict[str, int] = {"input_tokens": 0, "output_tokens": 0}

    def feed(self, chunk: dict[str, Any]) -> bytes:
        if isinstance(chunk.get("usage"), dict):
            self.usage = usage_of(chunk["usage"])
        out = [] if self.started else self._start()
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = _obj(choice.get("delta"))
            for key in ("content", "refusal"):
                if isinstance(delta.get(key), str) and delta[key]:
                    self.refused = self.refused or key == "refusal"
                    out += self._text(delta[key])
            for call in delta.get("tool_calls") or []:
                if isinstance(call, dict):
                    out += self._call(call)
            if choice.get("finish_reason"):
                self.stop = stop_of(choice, self.stops)
        return b"".join(out)

    def end(self) -> bytes:
        out = [] if self.started else self._start()
        out += self._close()
        reason, sequence = ("refusal", None) if self.refused else self.stop
        delta = {"stop_reason": reason, "stop_sequence": sequence}
        out.append(event("message_delta", {"type": "message_delta", "delta": delta, "usage": self.usage}))
        out.append(event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def _start(self) -> list[bytes]:
        self.started = True
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.usage["input_tokens"], "output_tokens": 0},
        }
        return [
            event("message_start", {"type": "message_start", "message": message}),
            event("ping", {"type": "ping"}),
        ]

    def _open(self, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self.open = block["type"]
        self.blocks += 1
        start = {"type": "content_block_start", "index": self.blocks - 1, "content_block": block}
        out.append(event("content_block_start", start))
        return out

    def _close(self) -> list[bytes]:
        if self.open is None:
            return []
        self.open = None
        return [event("content_block_stop", {"type": "content_block_stop", "index": self.blocks - 1})]

    def _text(self, text: str) -> list[bytes]:
        out = [] if self.open == "text" else self._open({"type": "text", "text": ""})
        delta = {"type": "text_delta", "text": text}
        out.append(
            event("content_block_delta", {"type": "content_block_delta", "index": self.blocks - 1, "delta": delta})
        )
        return out

    def _call(self, call: dict[str, Any]) -> list[bytes]:
        """A tool call's first delta opens its block; its arguments follow as ``input_json_delta``. An
        upstream that interleaves two calls' arguments gets each piece under its own call's index (the
        SDK accumulates by index) even once that block was closed."""
        position = call.get("index", 0)
        function = _obj(call.get("function"))
        out: list[bytes] = []
        if position not in self.tools:
            call_id = call.get("id") if isinstance(call.get("id"), str) else "toolu_" + uuid.uuid4().hex[:24]
            name = function.get("name") if isinstance(function.get("name"), str) else ""
            out = self._open({"type": "tool_use", "id": call_id, "name": name, "input": {}})
            self.tools[position] = self.blocks - 1
        args = function.get("arguments")
        if isinstance(args, str) and args:
            delta = {"type": "input_json_delta", "partial_json": args}
            index = self.tools[position]
            out.append(event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        return out
