"""Pieces every translating adapter needs: OpenAI chunks and answers, data URLs, tool arguments,
and the 400 for a feature an upstream cannot honour."""

from __future__ import annotations

import base64
import binascii
import struct
import time
import uuid
from typing import Any, TypeVar

from gateway import jsonx
from providers.base import UpstreamInvalid, UpstreamRejected

T = TypeVar("T")


# Reading an upstream's answer: where a part the format requires is missing or of the wrong type, the
# answer is invalid (UpstreamInvalid, a fallback). Only these readers say so: anything else an adapter
# raises is its own bug, and must not be dressed as a flaky upstream.


def malformed(what: str) -> UpstreamInvalid:
    return UpstreamInvalid(f"unexpected answer shape: {what}")


def obj(value: Any, what: str) -> dict[str, Any]:
    """``value``, which the format says is an object."""
    if not isinstance(value, dict):
        raise malformed(f"{what} is not an object")
    return value


def need(doc: dict[str, Any], key: str, kind: type[T]) -> T:
    """``doc[key]``, a part the format requires, of type ``kind``."""
    value = doc.get(key)
    if not isinstance(value, kind):
        raise malformed(f"'{key}' is missing or not of type {kind.__name__}")
    return value


def opt(doc: dict[str, Any], key: str, kind: type[T], default: T) -> T:
    """``doc[key]`` if it is a ``kind``, else ``default``: an optional part (usage, a stop reason) of
    another type is taken as absent."""
    value = doc.get(key)
    return value if isinstance(value, kind) else default


def text(doc: dict[str, Any], key: str) -> str:
    """The text at ``doc[key]``: empty when it is absent or null."""
    value = doc.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise malformed(f"'{key}' is not a string")
    return value


def objects(doc: dict[str, Any], key: str, required: bool = False) -> list[dict[str, Any]]:
    """The objects listed at ``doc[key]``; none when it is absent or null, unless ``required``."""
    items = doc.get(key)
    if items is None and not required:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise malformed(f"'{key}' is not a list of objects")
    return items


def finish(table: dict[str, str], reason: Any) -> str:
    """The OpenAI finish_reason for an upstream's stop reason (``stop`` for one it does not list)."""
    return table.get(reason, "stop") if isinstance(reason, str) else "stop"


def unsupported(provider_type: str, param: str, what: str) -> UpstreamRejected:
    """The request asks for something this upstream cannot do: a clear 400, never a silent drop."""
    return UpstreamRejected(
        400, f"{what} is not supported by {provider_type} providers.", param=param, code="unsupported_parameter"
    )


def invalid(param: str, message: str) -> UpstreamRejected:
    return UpstreamRejected(400, message, param=param, code="invalid_value")


def check_common(provider_type: str, body: dict[str, Any], *, n: bool = False, logprobs: bool = False) -> None:
    """Features that change the shape of the answer: refused unless the upstream has them."""
    if not n and isinstance(body.get("n"), int) and body["n"] > 1:
        raise unsupported(provider_type, "n", "More than one choice (n > 1)")
    if not logprobs and (body.get("logprobs") or body.get("top_logprobs")):
        raise unsupported(provider_type, "logprobs", "logprobs")
    for key in ("audio", "prediction"):
        if body.get(key):
            raise unsupported(provider_type, key, f"'{key}'")
    modalities = body.get("modalities")
    if isinstance(modalities, list) and any(m != "text" for m in modalities):
        raise unsupported(provider_type, "modalities", "Output modalities other than text")


def stop_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return value
    raise invalid("stop", "'stop' must be a string or an array of strings.")


def text_of(content: Any, param: str) -> str:
    """The text of a message whose content is a string or an array of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                out.append(part["text"])
            else:
                raise invalid(param, f"'{param}' may only hold text parts here.")
        return "".join(out)
    raise invalid(param, f"'{param}' must be a string or an array of content parts.")


def data_url(url: str, param: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a ``data:`` URL; None for any other URL."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise invalid(param, "Image data URLs must be base64: data:<media type>;base64,<data>.")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(param, "The image data URL does not hold valid base64.") from None
    return header[: -len(";base64")] or "application/octet-stream", data


def image_url_of(part: dict[str, Any], param: str) -> str:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise invalid(param, f"'{param}.image_url.url' is required.")
    return url


def arguments_of(call: dict[str, Any], param: str) -> Any:
    """A tool call's arguments (a JSON text in OpenAI's format) as a value."""
    function = call.get("function")
    if not isinstance(function, dict):
        function = {}
    raw = function.get("arguments", "{}")
    if isinstance(raw, dict):
        return raw
    try:
        return jsonx.loads(raw or "{}")
    except (ValueError, TypeError):
        raise invalid(param, f"'{param}.function.arguments' must be a JSON object text.") from None


def call_name(call: Any, param: str, need_id: bool = False) -> str:
    """The function name of an assistant tool call in the history (and check its id when the format needs it)."""
    name = (call.get("function") or {}).get("name") if isinstance(call, dict) else None
    if not isinstance(name, str) or need_id and not isinstance(call.get("id"), str):
        raise invalid(
            param, "A tool call needs an id and a function name." if need_id else "A tool call needs a function name."
        )
    return name


def max_tokens(body: dict[str, Any]) -> Any:
    return body.get("max_completion_tokens") or body.get("max_tokens")


def sampling(
    body: dict[str, Any],
    names: tuple[tuple[str, str], ...],
    *,
    max_tokens_key: str | None = None,
    stop_key: str | None = None,
) -> dict[str, Any]:
    """The settings ``body`` sets, under the upstream's names (``names``: ours -> theirs), with the token
    limit and the stop sequences under ``max_tokens_key`` and ``stop_key`` when those are given and set."""
    out = {theirs: body[ours] for ours, theirs in names if body.get(ours) is not None}
    limit = max_tokens(body) if max_tokens_key else None
    if limit:
        out[max_tokens_key] = limit  # type: ignore[index]
    stops = stop_list(body.get("stop")) if stop_key else None
    if stops:
        out[stop_key] = stops  # type: ignore[index]
    return out


class Turns:
    """Upstream turns with consecutive same-role items merged (``key``: "content" or "parts")."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.out: list[dict[str, Any]] = []

    def push(self, role: str, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        if self.out and self.out[-1]["role"] == role:
            self.out[-1][self.key].extend(items)
        else:
            self.out.append({"role": role, self.key: items})


def call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def tool_call(index: int | None, id_: str, name: str, arguments: Any) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else jsonx.dumps(arguments if arguments is not None else {}).decode()
    call: dict[str, Any] = {"id": id_, "type": "function", "function": {"name": name, "arguments": args}}
    if index is not None:
        call = {"index": index, **call}
    return call


def usage(prompt: Any, completion: Any) -> dict[str, int]:
    p = prompt if isinstance(prompt, int) else 0
    c = completion if isinstance(completion, int) else 0
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def answer(
    id_: str, model: str, content: str | None, tool_calls: list[dict[str, Any]], finish: str | None, use: dict[str, int]
) -> dict[str, Any]:
    """An OpenAI chat.completion. ``refusal`` is always null: OpenAI's schema requires the key, and no
    translated upstream reports a refusal apart from its text."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content if content or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": id_,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": use,
    }


def base64_embeddings(answer: dict[str, Any]) -> dict[str, Any]:
    """``answer`` with each vector as OpenAI sends it for ``encoding_format: "base64"`` (the openai SDK's
    default): its little-endian float32 bytes, in base64. ValueError for a vector that is not numbers."""
    for item in answer["data"]:
        vector = item["embedding"]
        try:
            packed = struct.pack(f"<{len(vector)}f", *vector)
        except (struct.error, OverflowError) as exc:  # not numbers, or beyond float32
            raise ValueError("embedding values") from exc
        item["embedding"] = base64.b64encode(packed).decode("ascii")
    return answer


class Chunks:
    """OpenAI chat.completion.chunk objects for one stream: same id, created and model in each."""

    def __init__(self, model: str, id_: str | None = None) -> None:
        self.id = id_ or completion_id()
        self.created = int(time.time())
        self.model = model

    def delta(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    def usage(self, use: dict[str, int]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": use,
        }
