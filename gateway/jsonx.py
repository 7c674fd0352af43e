"""JSON in and out: orjson on the hot path, the standard library for what orjson refuses.

orjson turns integers beyond 64 bits into floats (and refuses to write them). A client's request must
pass through untouched all the same, so :func:`loads_exact` sends documents with 20 or more digits in
a row down the standard library's slower, exact path. Upstream answers use :func:`loads`: OpenAI-shaped
answers carry no such integers, and an embedding answer's digits would make the check cost more than
the parse.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_TWENTY_DIGITS = b"0" * 20


def loads(data: bytes) -> Any:
    """Parse JSON fast; raises ValueError when it is not JSON (NaN and Infinity included)."""
    return orjson.loads(data)


def loads_exact(data: bytes) -> Any:
    """Like :func:`loads`, keeping integers of any size exact."""
    if _TWENTY_DIGITS not in data.translate(_DIGITS_TO_ZERO):
        return orjson.loads(data)
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, separators=(",", ":")).encode()
