"""``responses:``: how long the Responses endpoint keeps a stored response for ``previous_response_id``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.config.reader import Reader


@dataclass(frozen=True)
class ResponsesConfig:
    ttl: float = 86400.0  # seconds a stored response (and its conversation items) can be continued or read


def read_responses(r: Reader, raw: Any) -> ResponsesConfig:
    m = r.mapping(raw, "responses", {"ttl": False}) or {}
    ttl = r.number(m["ttl"], "responses.ttl") if "ttl" in m else None
    return ResponsesConfig(float(ttl)) if ttl is not None else ResponsesConfig()
