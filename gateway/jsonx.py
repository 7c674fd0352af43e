"""JSON in and out: orjson on the hot path, the standard library for what orjson refuses.

orjson turns integers beyond 64 bits into floats (and refuses to write them); a client's request must
pass through untouched all the same, so documents with 20 or more digits in a row take the slower,
exact path.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


_LONG_DIGITS = re.compile(rb"\d{20}")


def loads(data: bytes) -> Any:
    """Parse JSON; raises ValueError when it is not JSON (NaN and Infinity included)."""
    if _LONG_DIGITS.search(data) is None:
        return orjson.loads(data)
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
