"""Query parameters of the admin API, checked: a bad one is a 400 that names it."""

from __future__ import annotations

import math
from collections.abc import Collection

from aiohttp import web

from gateway.errors import InvalidRequest


def choice(request: web.Request, name: str, choices: Collection[str], default: str | None) -> str | None:
    value = request.query.get(name, default)
    if value is not None and value not in choices:
        raise InvalidRequest(f"'{name}' must be one of {', '.join(sorted(choices))}.", param=name)
    return value


def integer(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise InvalidRequest(f"'{name}' must be a whole number from {low} to {high}.", param=name)
    return int(text)


def timestamp(request: web.Request, name: str, default: float | None) -> float | None:
    """Unix seconds (a whole or decimal number)."""
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or not text.isascii():
        raise InvalidRequest(f"'{name}' must be a time in Unix seconds, like 1735689600.", param=name)
    return value


def text(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    if value is not None and (not value or len(value) > 256):
        raise InvalidRequest(f"'{name}' must be 1 to 256 characters.", param=name)
    return value
