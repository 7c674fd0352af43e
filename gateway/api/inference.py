"""The inference endpoints: chat, completions, embeddings. By the time one runs, the caller is known,
the body is parsed and the chain of targets is resolved (see the middlewares); it only forwards."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema

from gateway import jsonx
from gateway.api import events as sse
from gateway.api import schemas
from gateway.api.answers import AUTH, account, error_docs, served_answer, served_headers
from gateway.api.validation import validate
from gateway.config import AUTO_MODEL
from gateway.errors import InvalidRequest
from gateway.keys import BODY, CHAIN, EXCHANGE, LIVE, OBSERVER, RUNTIME
from gateway.routing import fallback
from gateway.routing.router import same_pool

_STREAMS = ["application/json", "text/event-stream"]  # the 200 is an event stream with `stream: true`


async def _forward(request: web.Request, endpoint: str) -> web.StreamResponse:
    body = request[BODY]
    validate(endpoint, body)
    providers = request[RUNTIME].providers
    requested = request[CHAIN]
    chain = tuple(t for t in requested if providers[t.provider].supports(endpoint))
    # the model asked for must serve the endpoint itself; its fallbacks that cannot are skipped
    if not chain or (
        body["model"] != AUTO_MODEL and chain[0] is not requested[0] and not same_pool(chain[0], requested[0])
    ):
        raise InvalidRequest(
            f"The model `{body['model']}` does not support {request.path}.", param="model", code="unsupported_endpoint"
        )
    breakers = request.app[LIVE].breakers
    x = request[EXCHANGE]
    if body.get("stream") is True:
        x.stream = True
        metrics = request.app[OBSERVER].metrics
        gauge = metrics.streams if metrics is not None else None
        async with await fallback.open_stream(providers, breakers, chain, endpoint, body, x, gauge) as stream:
            x.ttfb = x.since_start()
            resp = await sse.relay(request, stream, served_headers(stream.target, stream.attempts))
        account(request, stream.target, stream.usage)
        x.error_code = stream.error_code  # a failure after the 200 is a failure all the same
        return resp
    served = await fallback.complete(providers, breakers, chain, endpoint, body, x)
    result = jsonx.with_model(served.result, served.target.id)
    account(request, served.target, result.get("usage"))
    return served_answer(request, served.target, served.attempts, result)


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
async def embeddings(request: web.Request) -> web.StreamResponse:
    return await _forward(request, "embeddings")
