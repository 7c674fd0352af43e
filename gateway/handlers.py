"""The endpoints. By the time an inference handler runs, the caller is known, the body is parsed and
the chain of targets is resolved (see the middlewares); a handler only forwards."""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema
from multidict import istr

from gateway import __version__, fallback, jsonx, schemas, sse
from gateway.breaker import Verdict
from gateway.config import AUTO_MODEL
from gateway.errors import AuthenticationFailed, InvalidRequest, ModelNotFound, NotFound
from gateway.routing import Target
from gateway.keys import (
    BODY, CHAIN, ENDPOINT_ATTR, EXCHANGE, LIVE, OBSERVER, OPENAPI, PRINCIPAL, PUBLIC_ATTR, RUNTIME, SHUTDOWN, STARTED_AT,
)
from gateway.ratelimit import cost_usd
from gateway.validation import validate

H = TypeVar("H", bound=Callable[..., Any])

_ERRORS = {
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
_AUTH = [{"bearerAuth": []}]
_STREAMS = ["application/json", "text/event-stream"]  # the 200 is an event stream with `stream: true`
_FLAGS = {"1": True, "true": True, "0": False, "false": False}
# istr: names aiohttp's header dict takes without case-folding them again on every answer
_PROVIDER_HEADER, _MODEL_HEADER = istr("x-localrouter-provider"), istr("x-localrouter-model")
_ATTEMPTS_HEADER = istr(fallback.ATTEMPTS_HEADER)


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


def _error_docs(*statuses: int) -> dict[int, dict[str, Any]]:
    return {s: {"schema": schemas.ErrorSchema, "description": _ERRORS[s]} for s in statuses}


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=jsonx.dumps(doc), status=status, content_type="application/json", headers=headers)


@docs(tags=["health"], summary="Health check (no authentication)",
      parameters=[{"in": "query", "name": "detail", "required": False, "schema": {"type": "string", "enum": list(_FLAGS)},
                   "description": "`1`: also list provider names and targets that failed lately or cool down"}])
@response_schema(schemas.HealthSchema, 200)
@response_schema(schemas.ErrorSchema, 400, description="An unknown value of `detail`")
@response_schema(schemas.HealthSchema, 503, description="Draining: shutting down, take it out of rotation")
@public
async def health(request: web.Request) -> web.Response:
    runtime = request[RUNTIME]
    state = request.app[LIVE].state.health()
    # a provider that cannot say which models it has: its names and reasons, never its address or key
    unreachable = [{"provider": name, "error": error} for name, error in runtime.catalog.failures().items()]
    healthy = state["ok"] and not unreachable
    doc: dict[str, Any] = {
        "status": "draining" if request.app[SHUTDOWN].draining else "ok" if healthy else "degraded",
        "version": __version__,
        "uptime_seconds": round(time.time() - request.app[STARTED_AT], 3),
        "providers": len(runtime.config.providers),
        "clients": len(runtime.clients),
        "state": state,
        "providers_unreachable": unreachable,
    }
    detail = request.query.get("detail", "0")
    if detail not in _FLAGS:
        raise InvalidRequest("'detail' must be 1 or 0.", param="detail")
    if _FLAGS[detail]:
        doc["provider_names"] = [p.name for p in runtime.config.providers]
        doc["targets"] = request.app[LIVE].breakers.snapshot()  # those that failed lately; no secrets
        doc["pid"] = os.getpid()  # which worker answered
    return _json(doc, status=503 if doc["status"] == "draining" else 200)


@docs(tags=["openapi"], summary="This OpenAPI 3.0 document (no authentication)",
      responses={200: {"description": "The OpenAPI 3.0 document"}})
@public
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


@docs(tags=["models"], summary="Models this client may use", security=_AUTH, responses=_error_docs(401))
@response_schema(schemas.ModelListSchema, 200)
async def models(request: web.Request) -> web.Response:
    started = int(request.app[STARTED_AT])
    found = await request[RUNTIME].router.visible_models(request[PRINCIPAL].policy)
    data = [{"id": model_id, "object": "model", "created": created or started, "owned_by": owner}
            for model_id, owner, created in found]
    return _json({"object": "list", "data": data})


@docs(tags=["models"], summary="One model this client may use", security=_AUTH,
      parameters=[{"in": "path", "name": "id", "required": True, "schema": {"type": "string"},
                   "description": "A `provider/model` id (its `/` as is or as `%2F`), or `localrouter/auto`"}],
      responses=_error_docs(401, 404))
@response_schema(schemas.ModelSchema, 200)
async def model(request: web.Request) -> web.Response:
    model_id = request.match_info["id"]
    found = await request[RUNTIME].router.visible_model(request[PRINCIPAL].policy, model_id)
    if found is None:  # one answer for unknown and not allowed: a client learns nothing of other models
        raise ModelNotFound(f"The model `{model_id[:200]}` does not exist or you do not have access to it.",
                            param="model")
    model_id, owner, created = found
    return _json({"id": model_id, "object": "model", "created": created or int(request.app[STARTED_AT]),
                  "owned_by": owner})


async def _forward(request: web.Request, endpoint: str) -> web.StreamResponse:
    body = request[BODY]
    validate(endpoint, body)
    providers = request[RUNTIME].providers
    requested = request[CHAIN]
    chain = tuple(t for t in requested if providers[t.provider].supports(endpoint))
    # the model asked for must serve the endpoint itself; its fallbacks that cannot are skipped
    if not chain or (body["model"] != AUTO_MODEL and chain[0] is not requested[0]):
        raise InvalidRequest(f"The model `{body['model']}` does not support {request.path}.",
                             param="model", code="unsupported_endpoint")
    breakers = request.app[LIVE].breakers
    x = request[EXCHANGE]
    if body.get("stream") is True:
        x.stream = True
        opened = await fallback.open_stream(providers, breakers, chain, endpoint, body, x)
        first, rest = opened.result
        x.ttfb = x.since_start()
        verdict = Verdict(breakers, opened.target.id, providers[opened.target.provider].config.cooldown)
        options = body.get("stream_options")
        seen = sse.Outcome(usage_apart=isinstance(options, dict) and options.get("include_usage") is True)
        metrics = request.app[OBSERVER].metrics
        if metrics is not None:
            metrics.streams[0] += 1
        try:
            resp = await sse.relay(request, opened.target, first, rest, chat=endpoint == "chat",
                                   headers=_served_headers(opened), verdict=verdict, seen=seen)
        finally:
            if metrics is not None:
                metrics.streams[0] -= 1
        _account(request, opened.target, seen.usage)
        x.error_code = seen.error_code  # a failure after the 200 is a failure all the same
        return resp
    served = await fallback.complete(providers, breakers, chain, endpoint, body, x)
    served.result["model"] = served.target.id
    _account(request, served.target, served.result.get("usage"))
    if request.app[OBSERVER].bodies:
        x.response_body = served.result
    return web.Response(body=jsonx.encode_answer(served.result), content_type="application/json",
                        headers=_served_headers(served))


def _account(request: web.Request, target: Target, usage: Any) -> None:
    """Note what the answer used and cost, and count it against the client's budgets."""
    if not isinstance(usage, dict):
        return
    x = request[EXCHANGE]
    price = request[RUNTIME].providers[target.provider].config.prices.get(target.model)
    x.usage, x.cost_usd = usage, cost_usd(usage, price)
    principal = request[PRINCIPAL]
    if principal.policy.limits:
        request.app[LIVE].limiter.record(principal.client.name, principal.policy.limits, usage, x.cost_usd)


def _served_headers(served: fallback.Served[Any]) -> dict[str, str]:
    """What happened, for debugging: which target answered, after how many upstream calls."""
    return {_PROVIDER_HEADER: served.target.provider, _MODEL_HEADER: served.target.id,
            _ATTEMPTS_HEADER: str(served.attempts)}


@docs(tags=["inference"], summary="Create a chat completion", security=_AUTH,
      description="OpenAI's chat completions, forwarded through the model's fallback chain. "
                  "With `stream: true` the answer is Server-Sent Events ending with `data: [DONE]`.",
      produces=_STREAMS, responses=_error_docs(400, 401, 403, 404, 415, 429, 502, 503))
@request_schema(schemas.ChatCompletionRequestSchema, required=True)
@response_schema(schemas.ChatCompletionSchema, 200)
@inference("chat")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _forward(request, "chat")


@docs(tags=["inference"], summary="Create a (legacy) text completion", security=_AUTH,
      description="With `stream: true` the answer is Server-Sent Events ending with `data: [DONE]`.",
      produces=_STREAMS, responses=_error_docs(400, 401, 403, 404, 415, 429, 502, 503))
@request_schema(schemas.CompletionRequestSchema, required=True)
@response_schema(schemas.CompletionSchema, 200)
@inference("completions")
async def completions(request: web.Request) -> web.StreamResponse:
    return await _forward(request, "completions")


@docs(tags=["inference"], summary="Create embeddings", security=_AUTH,
      responses=_error_docs(400, 401, 403, 404, 415, 429, 502, 503))
@request_schema(schemas.EmbeddingRequestSchema, required=True)
@response_schema(schemas.EmbeddingListSchema, 200)
@inference("embeddings")
async def embeddings(request: web.Request) -> web.StreamResponse:
    return await _forward(request, "embeddings")


@docs(tags=["observability"], summary="Prometheus metrics (bearer `metrics.token` when configured)",
      responses={200: {"description": "The Prometheus text format"}, 401: {"description": "Wrong or no token"},
                 404: {"description": "Metrics are turned off"}})
@public
async def metrics(request: web.Request) -> web.Response:
    observer = request.app[OBSERVER]
    if observer.metrics is None:
        raise NotFound("Metrics are turned off (metrics.enabled).")
    token = request[RUNTIME].config.metrics.token
    if token is not None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise AuthenticationFailed("/metrics needs 'Authorization: Bearer <metrics.token>'.")
    return web.Response(body=observer.metrics.render(), content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


@docs(tags=["observability"], summary="One of this client's requests: model, provider, tokens, cost",
      security=_AUTH, parameters=[{"in": "query", "name": "id", "required": True, "schema": {"type": "string"},
                                    "description": "The request's `X-Request-ID`"}],
      responses=_error_docs(400, 401, 404))
@response_schema(schemas.GenerationSchema, 200)
async def generation(request: web.Request) -> web.Response:
    record_id = request.query.get("id")
    if not record_id:
        raise InvalidRequest("'id' is required: the X-Request-ID of one of your requests.", param="id")
    writer = request.app[OBSERVER].usage
    record = await writer.get(record_id) if writer is not None else None
    if record is None or record.client != request[PRINCIPAL].client.name:  # another client's: not found
        raise NotFound(f"No request with id {record_id[:100]!r} for this client.", param="id")
    return _json({"object": "generation", **record.public()})


ROUTES = (
    ("GET", "/health", health),
    ("GET", "/openapi.json", openapi),
    ("GET", "/models", models),
    ("GET", "/models/{id:.+}", model),  # ids hold a '/'
    ("POST", "/chat/completions", chat_completions),
    ("POST", "/completions", completions),
    ("POST", "/embeddings", embeddings),
    ("GET", "/metrics", metrics),
    ("GET", "/generation", generation),
)
