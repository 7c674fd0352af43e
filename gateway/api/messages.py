"""Anthropic's Messages API: ``POST /messages`` and ``POST /messages/count_tokens``, over the same chains
as chat. By the time a handler runs, the caller is known, the request counted against its limits, the
body parsed and the chain resolved (the middlewares); errors leave in Anthropic's shape (the route's
dialect).

Each target is asked its own way: an ``anthropic`` provider natively (the body as sent but for
``model``; Anthropic's answer and events as it sent them, ``model`` rewritten), any other translated to
chat and back (gateway.dialects). A target that cannot serve chat, or that would need a translation
this request refuses, is skipped; the model asked for must serve it itself.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema

from gateway import jsonx
from gateway.api import events as sse
from gateway.api import schemas
from gateway.api.answers import account, json_answer, served_answer, served_headers
from gateway.config import AUTO_MODEL
from gateway.dialects import messages_reply, messages_request
from gateway.errors import AllProvidersFailed, GatewayError, InvalidRequest, RateLimited, UpstreamInvalidResponse
from gateway.keys import BODY, CHAIN, EXCHANGE, LIVE, OBSERVER, RUNTIME
from gateway.routing import fallback
from gateway.routing.router import Target, same_pool
from gateway.routing.stream import Stream
from providers.anthropic import AnthropicProvider, MessagesStream, messages_usage
from providers.base import Provider, StreamBatch, UpstreamInvalid

ENDPOINT = "messages"
AUTH: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyAuth": []}]
_ESTIMATE = {messages_request.ESTIMATE_HEADER: "true"}
EVENT_STREAM = {
    "schema": {
        "type": "string",
        "description": "Anthropic's event stream: `event: <type>` and `data: <JSON>` per event, from `message_start` "
        "to `message_stop` (no `[DONE]`); a failure after the start is `event: error`.",
    }
}
_ERRORS = {
    400: "The request is malformed, cannot be translated for the target, or the upstream rejected it",
    401: "Missing or invalid client secret (`x-api-key` or `Authorization: Bearer`)",
    403: "The client's strategy does not allow this model",
    404: "No provider serves this model, or this client may not see it",
    413: "The body is larger than `server.max_body_bytes`",
    415: "The body is not `application/json`",
    429: "The client is over a rate limit, or every target is rate limited (see Retry-After)",
    502: "The upstream returned an invalid response",
    503: "Every target in the fallback chain failed",
}


def _error_docs() -> dict[int, dict[str, Any]]:
    return {s: {"schema": schemas.AnthropicErrorSchema, "description": d} for s, d in _ERRORS.items()}


def _unsupported(body: dict[str, Any], request: web.Request) -> InvalidRequest:
    message = f"The model `{body['model']}` does not support {request.path}."
    return InvalidRequest(message, param="model", code="unsupported_endpoint")


def _native(provider: Provider) -> bool:
    return isinstance(provider, AnthropicProvider)


class _Plan:
    """How one request goes to its targets: the chain it may use, the chat body for those that do not
    speak Messages (translated once), and the native stream opened last (whose usage counts)."""

    __slots__ = ("body", "headers", "providers", "chain", "chat", "stops", "upstream")

    def __init__(self, request: web.Request, body: dict[str, Any]) -> None:
        self.body, self.headers = body, request.headers
        self.providers = providers = request[RUNTIME].providers
        requested = request[CHAIN]
        self.chat: dict[str, Any] | None = None
        refusal: InvalidRequest | None = None
        if not all(_native(providers[t.provider]) for t in requested):
            try:
                self.chat = messages_request.to_chat(body)
            except InvalidRequest as exc:
                refusal = exc
        self.chain = tuple(t for t in requested if self._serves(providers[t.provider]))
        if not self.chain or (
            body["model"] != AUTO_MODEL
            and self.chain[0] is not requested[0]
            and not same_pool(self.chain[0], requested[0])
        ):
            raise refusal or _unsupported(body, request)
        self.stops = messages_request.stop_sequences(body)
        self.upstream: MessagesStream | None = None

    def _serves(self, provider: Provider) -> bool:
        return provider.supports("chat") and (self.chat is not None or _native(provider))

    async def message(self, provider: Provider, target: Target) -> dict[str, Any]:
        """One target's message, in Anthropic's shape either way."""
        if isinstance(provider, AnthropicProvider):
            answer = await provider.messages(self.body, target.model, self.headers)
            return jsonx.with_model(answer, target.id)
        assert self.chat is not None  # the chain holds a translated target only with a chat body
        answer = await provider.infer("chat", self.chat, target.model)
        try:
            return messages_reply.to_message(answer, target.id, self.stops)
        except UpstreamInvalidResponse as exc:  # an answer Anthropic's shape cannot hold: the next target's
            raise UpstreamInvalid(exc.message) from exc

    def events(self, provider: Provider, target: Target) -> AsyncGenerator[StreamBatch, None]:
        """One target's stream: Anthropic's events, or chat chunks for :class:`TranslatedEncoding`."""
        if isinstance(provider, AnthropicProvider):
            return self._native_events(provider, target)
        assert self.chat is not None
        return provider.infer_stream("chat", self.chat, target.model)

    async def _native_events(self, provider: AnthropicProvider, target: Target) -> AsyncGenerator[StreamBatch, None]:
        upstream = self.upstream = await provider.messages_stream(self.body, target.model, self.headers)
        try:
            async for batch in upstream:
                yield batch
        finally:
            await upstream.aclose()

    def encoding(self, stream: Stream) -> sse.Encoding:
        if self.upstream is not None and _native(self.providers[stream.target.provider]):
            return NativeEncoding(self.upstream)
        return TranslatedEncoding(messages_reply.MessagesEncoder(stream.target.id, self.stops))


class NativeEncoding:
    """Anthropic's events as Anthropic sent them, each under its own ``event:`` name, with the model in
    ``message_start`` set to the target that served them; a failure is Anthropic's ``event: error``."""

    __slots__ = ("_upstream",)

    def __init__(self, upstream: MessagesStream) -> None:
        self._upstream = upstream

    def batch(self, batch: StreamBatch, stream: Stream) -> bytes:
        out = []
        for event in batch.chunks:
            if event["type"] == "message_start":
                event["message"]["model"] = stream.target.id
            out.append(messages_reply.event(event["type"], event))
        if batch.done:
            stream.usage = messages_usage(self._upstream.usage)
        return b"".join(out)

    def failure(self, err: GatewayError, stream: Stream) -> bytes:
        stream.usage = messages_usage(self._upstream.usage)  # what Anthropic counted before it broke
        return messages_reply.error_event(err.status, err.message)


class TranslatedEncoding:
    """Chat chunks as Anthropic's event stream (:class:`gateway.dialects.messages_reply.MessagesEncoder`);
    the usage noted is chat's, from the chunk that carries it."""

    __slots__ = ("_encoder",)

    def __init__(self, encoder: messages_reply.MessagesEncoder) -> None:
        self._encoder = encoder

    def batch(self, batch: StreamBatch, stream: Stream) -> bytes:
        out = []
        for chunk in batch.chunks:
            if chunk.get("usage"):
                stream.usage = chunk["usage"]
            out.append(self._encoder.feed(chunk))
        if batch.done:
            out.append(self._encoder.end())
        return b"".join(out)

    def failure(self, err: GatewayError, stream: Stream) -> bytes:
        return messages_reply.error_event(err.status, err.message)


@docs(
    tags=["anthropic"],
    summary="Create a message (Anthropic's Messages API)",
    security=AUTH,
    description="Anthropic's Messages API over the model's fallback chain: natively to `anthropic` providers, "
    "translated to chat completions for any other. With `stream: true` the answer is Anthropic's event stream. "
    "Errors are Anthropic's `{type: error, error: {type, message}}`.",
    produces=["application/json", "text/event-stream"],
    event_stream=EVENT_STREAM,
    responses=_error_docs(),
)
@request_schema(schemas.MessagesRequestSchema, required=True)
@response_schema(schemas.MessageSchema, 200)
async def messages(request: web.Request) -> web.StreamResponse:
    body = messages_request.check(request[BODY])
    plan = _Plan(request, body)
    providers, breakers, x = plan.providers, request.app[LIVE].breakers, request[EXCHANGE]
    if body.get("stream") is True:
        x.stream = True
        metrics = request.app[OBSERVER].metrics
        gauge = metrics.streams if metrics is not None else None
        opened = await fallback.open_stream(
            providers, breakers, plan.chain, ENDPOINT, body, x, gauge, opener=plan.events
        )
        async with opened as stream:
            x.ttfb = x.since_start()
            headers = served_headers(stream.target, stream.attempts)
            resp = await sse.relay(request, stream, headers, plan.encoding(stream))
        account(request, stream.target, stream.usage)
        x.error_code = stream.error_code  # a failure after the 200 is a failure all the same
        return resp
    served = await fallback.complete(providers, breakers, plan.chain, ENDPOINT, body, x, call=plan.message)
    account(request, served.target, messages_usage(served.result.get("usage")))
    return served_answer(request, served.target, served.attempts, served.result)


@docs(
    tags=["anthropic"],
    summary="Count a message's input tokens (Anthropic's Messages API)",
    security=AUTH,
    description="Anthropic's count from an `anthropic` target; for any other the gateway's estimate "
    f"(characters / {messages_request.CHARS_PER_TOKEN}, {messages_request.IMAGE_TOKENS} per image), "
    f"said so by `{messages_request.ESTIMATE_HEADER}: true`.",
    responses=_error_docs(),
)
@request_schema(schemas.CountTokensRequestSchema, required=True)
@response_schema(schemas.TokenCountSchema, 200)
async def count_tokens(request: web.Request) -> web.Response:
    """The chain's targets are asked in order up to the first that is not an ``anthropic`` provider, which
    answers the estimate (as it would serve the message); so does it when every one before it failed."""
    body = _countable(request[BODY])
    providers, x = request[RUNTIME].providers, request[EXCHANGE]
    chain = tuple(t for t in request[CHAIN] if providers[t.provider].supports("chat"))
    if not chain:
        raise _unsupported(body, request)
    natives = _native_prefix(providers, chain)
    if natives:
        try:
            served = await fallback.complete(
                providers, request.app[LIVE].breakers, natives, ENDPOINT, body, x, call=_counter(body, request.headers)
            )
            return json_answer(served.result, headers=served_headers(served.target, served.attempts))
        except (AllProvidersFailed, RateLimited, UpstreamInvalidResponse):
            if len(natives) == len(chain):
                raise
    target = x.target = chain[len(natives)]
    count = {"input_tokens": messages_request.estimate_input_tokens(body)}
    return json_answer(count, headers={**served_headers(target, x.attempts), **_ESTIMATE})


def _countable(body: dict[str, Any]) -> dict[str, Any]:
    """What the estimate needs to be sure of (an Anthropic target checks the rest itself)."""
    if not isinstance(body.get("messages"), list):
        raise messages_request.invalid("messages", "messages: Field required (an array).")
    if not isinstance(body.get("tools", []), list | None):
        raise messages_request.invalid("tools", "tools: must be an array.")
    return body


def _native_prefix(providers: Mapping[str, Provider], chain: tuple[Target, ...]) -> tuple[Target, ...]:
    for i, target in enumerate(chain):
        if not _native(providers[target.provider]):
            return chain[:i]
    return chain


def _counter(
    body: dict[str, Any], headers: Mapping[str, str]
) -> Callable[[Provider, Target], Awaitable[dict[str, Any]]]:
    async def count(provider: Provider, target: Target) -> dict[str, Any]:
        assert isinstance(provider, AnthropicProvider)  # the chain counted natively holds only those
        return await provider.count_tokens(body, target.model, headers)

    return count
