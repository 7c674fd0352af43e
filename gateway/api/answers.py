"""What every endpoint module shares: JSON answers and their OpenAPI documentation. (What the middlewares
owe an endpoint is in the route table, gateway.api.routes.)"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway import jsonx
from gateway.api import schemas

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


def error_docs(*statuses: int) -> dict[int, dict[str, Any]]:
    return {s: {"schema": schemas.ErrorSchema, "description": ERRORS[s]} for s in statuses}


def json_answer(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=jsonx.dumps(doc), status=status, content_type="application/json", headers=headers)
