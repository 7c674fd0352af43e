"""Light checks of a request body before it is forwarded: the fields every upstream needs.

Deliberately not a full schema load: unknown fields pass through untouched, and the upstream stays
the judge of everything it alone understands.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequest

_REQUIRED = {"chat": "messages", "completions": "prompt", "embeddings": "input"}


def _is_text_or_list(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and len(value) > 0)


def validate(endpoint: str, body: dict[str, Any]) -> None:
    field = _REQUIRED[endpoint]
    value = body.get(field)
    if value is None:
        raise InvalidRequest(f"Missing required parameter: '{field}'.", param=field, code="missing_required_parameter")
    if endpoint == "chat":
        if not isinstance(value, list) or not value:
            raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
        for i, message in enumerate(value):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise InvalidRequest(f"'messages[{i}]' must be an object with a string 'role'.",
                                     param=f"messages[{i}]")
    elif not _is_text_or_list(value):
        raise InvalidRequest(f"'{field}' must be a string or a non-empty array.", param=field)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    if endpoint == "embeddings" and stream:
        raise InvalidRequest("Embeddings cannot be streamed.", param="stream")
