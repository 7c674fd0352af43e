"""What every endpoint module shares: JSON answers, their OpenAPI documentation, and the markers the
middlewares read (a public endpoint; an inference endpoint, whose body the permission check parses)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from gateway import jsonx
from gateway.api import schemas
from gateway.keys import ENDPOINT_ATTR, PUBLIC_ATTR

H = TypeVar("H", bound=Callable[..., Any])

ERRORS = {
    400: "The request is malformed, or the upstream rejected it",
    401: "Missing or invalid client secret",
    403: "The client's strategy does not allow this model",
    404: "No provider serves this model, or this client may not see it (for /generation: no such request of "
    "this client)",
    415: "The body is not `application/json`",
    429: "Every target in the chain is rate limited (see Retry-After)",
    502: "The upstream returned an invalid response",
    503: "Every target in the fallback chain failed",
}
AUTH: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def public(handler: H) -> H:
    """No client secret needed."""
    setattr(handler, PUBLIC_ATTR, True)
    return handler


def inference(endpoint: str) -> Callable[[H], H]:
    """The permission filter parses the body and resolves its model for this handler."""

    def mark(handler: H) -> H:
        setattr(handler, ENDPOINT_ATTR, endpoint)
        return handler

    return mark


def error_docs(*statuses: int) -> dict[int, dict[str, Any]]:
    return {s: {"schema": schemas.ErrorSchema, "description": ERRORS[s]} for s in statuses}


def json_answer(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=jsonx.dumps(doc), status=status, content_type="application/json", headers=headers)
