"""The inference endpoints: chat, completions, embeddings. By the time one runs, the caller is known,
the body is parsed and the chain of targets is resolved (see the middlewares); it only forwards."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema
from multidict import istr

from gateway import jsonx
from gateway.api import events as sse
from gateway.api import schemas
from gateway.api.answers import AUTH, error_docs, inference
from gateway.api.validation import validate
from gateway.config import AUTO_MODEL
from gateway.errors import InvalidRequest
from gateway.keys import BODY, CHAIN, EXCHANGE, LIVE, OBSERVER, PRINCIPAL, RUNTIME
from gateway.limits.limiter import cost_usd
from gateway.routing import fallback
from gateway.routing.breaker import Verdict
from gateway.routing.router import Target

_STREAMS = ["application/json", "text/event-stream"]  # the 200 is an event stream with `stream: true`
# istr: names aiohttp's header dict takes without case-folding them again on every answer
_PROVIDER_HEADER, _MODEL_HEADER = istr("x-localrouter-provider"), istr("x-localrouter-model")
_ATTEMPTS_HEADER = istr(fallback.ATTEMPTS_HEADER)


async def _forward(request: web.Request, endpoint: str) -> web.StreamResponse:
    body = request[BODY]
    validate(endpoint, body)
    providers = request[RUNTIME].providers
    requested = request[CHAIN]
    chain = tuple(t for t in requested if providers[t.provider].supports(endpoint))
    # the model asked for must serve the endpoint itself; its fallbacks that cannot are skipped
    if not chain or (body["model"] != AUTO_MODEL and chain[0] is not requested[0]):
        raise InvalidRequest(
            f"The model `{body['model']}` does not support {request.path}.", param="model", code="unsupported_endpoint"
        )
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
            resp = await sse.relay(
                request,
                opened.target,
                first,
                rest,
                chat=endpoint == "chat",
                headers=_served_headers(opened),
                verdict=verdict,
                seen=seen,
            )
        finally:
            if metrics is not None:
                metrics.streams[0] -= 1
        _account(request, opened.target, seen.usage)
        x.error_code = seen.error_code  # a failure after the 200 is a failure all the same
        return resp
    served = await fallback.complete(providers, breakers, chain, endpoint, body, x)
    result = jsonx.with_model(served.result, served.target.id)
    _account(request, served.target, result.get("usage"))
    if request.app[OBSERVER].bodies:
        x.response_body = result
    return web.Response(
        body=jsonx.encode_answer(result), content_type="application/json", headers=_served_headers(served)
    )


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
    return {
        _PROVIDER_HEADER: served.target.provider,
        _MODEL_HEADER: served.target.id,
        _ATTEMPTS_HEADER: str(served.attempts),
    }


@docs(
    tags=["inference"],
    summary="Create a chat completion",
    security=AUTH,
    description="OpenAI's chat completions, forwarded through the model's fallback chain. "
    "With `stream: true` the answer is Server-Sent Events ending with `data: [DONE]`.",
    produces=_STREAMS,
    responses=error_docs(400, 401, 403, 404, 415, 429, 502, 503),
)
@request_schema(schemas.ChatCompletionRequestSchema, required=True)
@response_schema(schemas.ChatCompletionSchema, 200)
@inference("chat")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _forward(request, "chat")


@docs(
    tags=["inference"],
    summary="Create a (legacy) text completion",
    security=AUTH,
    description="With `stream: true` the answer is Server-Sent Events ending with `data: [DONE]`.",
    produces=_STREAMS,
    responses=error_docs(400, 401, 403, 404, 415, 429, 502, 503),
)
@request_schema(schemas.CompletionRequestSchema, required=True)
@response_schema(schemas.CompletionSchema, 200)
@inference("completions")
async def completions(request: web.Request) -> web.StreamResponse:
    return await _forward(request, "completions")


@docs(
    tags=["inference"],
    summary="Create embeddings",
    security=AUTH,
    responses=error_docs(400, 401, 403, 404, 415, 429, 502, 503),
)
@request_schema(schemas.EmbeddingRequestSchema, required=True)
@response_schema(schemas.EmbeddingListSchema, 200)
@inference("embeddings")
async def embeddings(request: web.Request) -> web.StreamResponse:
    return await _forward(request, "embeddings")
