"""JSON in and out: orjson on the hot path, the standard library for what orjson refuses.

orjson rejects integers beyond 64 bits; a client's request must pass through untouched all the same,
so those rare documents take the slower path instead of an error.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ValueError when it is not JSON (NaN and Infinity included)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data, parse_constant=_reject_constant)


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
