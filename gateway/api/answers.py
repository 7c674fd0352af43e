"""What every endpoint module shares: JSON answers and their OpenAPI documentation (what the middlewares
owe an endpoint is in the route table, gateway.api.routes), and what an inference endpoint does with what
an answer used (:func:`account`) and says about who served it (:func:`served_headers`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import istr

from gateway import jsonx
from gateway.api import schemas
from gateway.keys import EXCHANGE, LIVE, OBSERVER, PRINCIPAL, RUNTIME
from gateway.limits.limiter import cost_usd
from gateway.routing import fallback
from gateway.routing.router import Target

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
# istr: names aiohttp's header dict takes without case-folding them again on every answer
_PROVIDER_HEADER, _MODEL_HEADER = istr("x-localrouter-provider"), istr("x-localrouter-model")
_ATTEMPTS_HEADER = istr(fallback.ATTEMPTS_HEADER)


def error_docs(*statuses: int) -> dict[int, dict[str, Any]]:
    return {s: {"schema": schemas.ErrorSchema, "description": ERRORS[s]} for s in statuses}


def json_answer(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=jsonx.dumps(doc), status=status, content_type="application/json", headers=headers)


def account(request: web.Request, target: Target, usage: Any) -> None:
    """Note what the answer used and cost, and count it against the client's budgets."""
    if not isinstance(usage, dict):
        return
    x = request[EXCHANGE]
    price = request[RUNTIME].providers[target.provider].config.prices.get(target.model)
    x.usage, x.cost_usd = usage, cost_usd(usage, price)
    if target.member is not None:  # a pool's target: its own budget counts the tokens too
        target.member.used(usage)
    principal = request[PRINCIPAL]
    if principal.policy.limits:
        request.app[LIVE].limiter.record(principal.client.name, principal.policy.limits, usage, x.cost_usd)


def served_headers(target: Target, attempts: int) -> dict[str, str]:
    """What happened, for debugging: which target answered, after how many upstream calls."""
    return {_PROVIDER_HEADER: target.provider, _MODEL_HEADER: target.id, _ATTEMPTS_HEADER: str(attempts)}


def served_answer(request: web.Request, target: Target, attempts: int, answer: dict[str, Any]) -> web.Response:
    """An inference endpoint's plain (not streamed) answer, as served by ``target`` after ``attempts``
    upstream calls: its usage already accounted; kept for the access log when ``logging.bodies`` is on."""
    if request.app[OBSERVER].bodies:
        request[EXCHANGE].response_body = answer
    return web.Response(
        body=jsonx.encode_answer(answer), content_type="application/json", headers=served_headers(target, attempts)
    )


def string_parameter(where: str, name: str, description: str) -> dict[str, Any]:
    """An OpenAPI parameter: a required string ``name`` in the ``path`` or the ``query``."""
    return {"in": where, "name": name, "required": True, "schema": {"type": "string"}, "description": description}
