"""Which requests the response cache may answer, and the key each is kept under.

The key is the request as its upstream would see it, written one way only: the strategy (entries are
never shared across strategies), the endpoint, the chain of targets the model resolved to (an alias,
``localrouter/auto`` and the model it names share entries), whether it streams, the rest of the body as
canonical JSON (keys sorted: their order does not matter; values exactly as sent), and, for Messages,
the client's headers a native Anthropic upstream is sent (its version and betas).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

CACHED_ENDPOINTS = frozenset({"chat", "completions", "embeddings", "messages", "responses"})
#: the client's headers each endpoint passes on to an upstream (providers.anthropic.CLIENT_HEADERS)
_PASSED_ON = {"messages": ("anthropic-version", "anthropic-beta")}
_NOT_IN_BODY = frozenset({"model", "stream"})  # in the key apart: the chain, and a strict boolean


class Directives(NamedTuple):
    """A request's ``Cache-Control``, as the response cache reads it (RFC 9111, section 5.2.1)."""

    no_cache: bool  # answer from the upstream, not from the cache; the fresh answer may be kept
    no_store: bool  # neither answered from the cache nor kept in it


def directives(header: str | None, pragma: str | None = None) -> Directives:
    """``Cache-Control`` read; without one, ``Pragma: no-cache`` means ``no-cache`` (RFC 9111, 5.4). An entry
    no older than ``max-age=0`` is one made now: the client asks for a fresh answer, as with ``no-cache``."""
    if not header:
        return Directives(_holds(pragma, "no-cache"), False)
    parts = [part.partition("=") for part in header.lower().split(",")]
    names = {name.strip() for name, _, _ in parts}
    stale = any(name.strip() == "max-age" and _zero(value) for name, _, value in parts)
    return Directives("no-cache" in names or stale, "no-store" in names)


def _zero(value: str) -> bool:
    digits = value.strip().strip('"')
    return digits.isdigit() and int(digits) == 0


def _holds(header: str | None, directive: str) -> bool:
    return header is not None and directive in (part.strip().lower() for part in header.split(","))


def cacheable(endpoint: str, body: Mapping[str, Any]) -> bool:
    """Whether the answer depends on the request alone. A Responses request does not when it is kept to be
    continued (``store`` not false: the gateway stores it under a new id) or continues one
    (``previous_response_id``: the stored conversation, which may be deleted or expire)."""
    if endpoint == "responses":
        return body.get("store") is False and body.get("previous_response_id") is None
    return endpoint in CACHED_ENDPOINTS


def fingerprint(
    strategy: str, endpoint: str, chain: tuple[str, ...], body: Mapping[str, Any], headers: Mapping[str, str]
) -> str:
    """The key of a request (see the module's docstring), as a hex SHA-256."""
    rest = {k: v for k, v in body.items() if k not in _NOT_IN_BODY}
    passed = [headers.get(name) for name in _PASSED_ON.get(endpoint, ())]
    return hashlib.sha256(canonical([strategy, endpoint, chain, body.get("stream") is True, passed, rest])).hexdigest()


def canonical(doc: Any) -> bytes:
    """``doc`` as JSON with sorted keys: the same bytes for the same document, whatever its keys' order.
    (The standard library for what orjson refuses: integers beyond 64 bits, kept exact.)"""
    try:
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
