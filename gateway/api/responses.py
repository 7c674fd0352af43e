"""OpenAI's Responses API: ``POST /responses`` through the model's fallback chain, and ``GET`` / ``DELETE
/responses/{id}`` for the responses kept to be continued (``previous_response_id``) or read again.

Each target is asked its own way. A provider whose ``endpoints`` list ``responses`` gets the request as
the client sent it, but for ``model`` and ``previous_response_id`` (the gateway's own id, which no
upstream knows: the stored conversation goes in ``input`` instead), and its response and events come
back as it sent them. Any other gets the chat completion the request translates to
(gateway.dialects.openai_responses), and its answer comes back as a response object or the Responses
API's events. Either way the client sees the gateway's own response id and, as ``model``, the target
that served it. A response is kept with its conversation for ``responses.ttl`` unless ``store: false``,
visible to the client that made it alone (gateway.observability.responses_store).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncGenerator, Iterator
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema

from gateway import jsonx
from gateway.api import events as sse
from gateway.api import schemas
from gateway.api.answers import AUTH, account, error_docs, json_answer, served_answer, served_headers
from gateway.config import AUTO_MODEL
from gateway.dialects import openai_responses as rs
from gateway.errors import GatewayError, InvalidRequest, NotFound, StoreUnavailable
from gateway.keys import BODY, CHAIN, EXCHANGE, FIREWALL, LIVE, OBSERVER, PRINCIPAL, RESPONSES, RUNTIME
from gateway.observability.usage import StoreError
from gateway.routing import fallback
from gateway.routing.router import Target, same_pool
from gateway.routing.stream import Stream
from providers.base import Provider, StreamBatch

log = logging.getLogger("localrouter.responses")

ENDPOINT = "responses"
_STREAMS = ["application/json", "text/event-stream"]
#: where a secret in the stored conversation is said to be
PREVIOUS = "previous_response"
_FINAL = frozenset({"completed", "incomplete", "failed"})  # a response in any other status is not kept


def _native(provider: Provider) -> bool:
    """The provider's upstream serves the Responses API itself (its ``endpoints`` list ``responses``)."""
    return provider.supports(ENDPOINT)


class Ask:
    """One Responses request, as each target is asked it: natively, or translated to chat (read once,
    when a target first needs it: a request only natives serve may hold what cannot translate)."""

    def __init__(self, body: dict[str, Any], previous: list[dict[str, Any]]) -> None:
        self.body, self.previous = body, previous
        self.items = rs.input_items(body, previous)  # the conversation so far, for the store
        self.response_id = rs.new_id("resp")
        self.created_at = int(time.time())
        self.store = body.get("store") is not False
        self._translated: rs.ResponsesRequest | None = None

    def translated(self) -> rs.ResponsesRequest:
        if self._translated is None:
            self._translated = rs.to_chat(self.body, self.previous)
        return self._translated

    async def call(self, provider: Provider, target: Target) -> dict[str, Any]:
        """The response object of one target."""
        if _native(provider):
            response = await provider.infer(ENDPOINT, rs.continued(self.body, self.previous), target.model)
            return {**response, "id": self.response_id, "model": target.id}
        answer = jsonx.with_model(await provider.infer("chat", self.translated().chat, target.model), target.id)
        return rs.to_response(answer, self.translated(), self.response_id, self.created_at)

    def open(self, provider: Provider, target: Target) -> AsyncGenerator[StreamBatch, None]:
        """One target's stream: the Responses API's events, or chat chunks (see :meth:`encoding`)."""
        if _native(provider):
            return provider.infer_stream(ENDPOINT, rs.continued(self.body, self.previous), target.model)
        return provider.infer_stream("chat", self.translated().chat, target.model)

    def encoding(self, provider: Provider, target: Target) -> NativeEvents | TranslatedEvents:
        if _native(provider):
            return NativeEvents(self.response_id, target.id)
        return TranslatedEvents(rs.ResponseStream(self.translated(), self.response_id, self.created_at, target.id))


class TranslatedEvents:
    """The relay's encoding of a chat stream as the Responses API's events (``rs.ResponseStream``)."""

    def __init__(self, events: rs.ResponseStream) -> None:
        self._events = events
        self._started = False

    @property
    def response(self) -> dict[str, Any]:
        return self._events.response

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._events.start()

    def batch(self, batch: StreamBatch, stream: Stream) -> bytes:
        for chunk in batch.chunks:
            if chunk.get("usage"):
                stream.usage = chunk["usage"]
        out = self._start() + self._events.feed(batch.chunks)
        return out + self._events.finish() if batch.done else out

    def failure(self, err: GatewayError, stream: Stream) -> bytes:
        return self._start() + self._events.fail(err.message)


class NativeEvents:
    """The relay's encoding of an upstream's own Responses events: each as it came, but for the response
    objects they carry (the gateway's id and the target as ``model``); a failure after them is
    ``response.failed`` with the response as last sent (``error`` if none was)."""

    def __init__(self, response_id: str, model: str) -> None:
        self._id, self._model = response_id, model
        self.response: dict[str, Any] | None = None  # the latest the upstream sent
        self._next = 0  # the sequence number after the last event's

    def batch(self, batch: StreamBatch, stream: Stream) -> bytes:
        out = bytearray()
        for event in batch.chunks:
            response = event.get("response")
            if isinstance(response, dict):
                response["id"], response["model"] = self._id, self._model
                self.response = response
                usage = rs.chat_usage(response.get("usage"))  # the last events' responses carry it
                if usage is not None:
                    stream.usage = usage
            number = event.get("sequence_number")
            if type(number) is int:
                self._next = number + 1
            out += _event(event)
        return bytes(out)

    def failure(self, err: GatewayError, stream: Stream) -> bytes:
        error = {"code": "server_error", "message": err.message}
        if self.response is None:
            return _event({"type": "error", **error, "param": None, "sequence_number": self._next})
        self.response = {**self.response, "status": "failed", "error": error}
        return _event({"type": "response.failed", "sequence_number": self._next, "response": self.response})


def _event(event: dict[str, Any]) -> bytes:
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + jsonx.dumps(event) + b"\n\n"


def _chain(request: web.Request) -> tuple[Target, ...]:
    """The targets that can serve the request, natively or as chat; the model asked for must be one."""
    providers, requested = request[RUNTIME].providers, request[CHAIN]
    chain = tuple(t for t in requested if _native(providers[t.provider]) or providers[t.provider].supports("chat"))
    model = request[BODY]["model"]
    if not chain or (model != AUTO_MODEL and chain[0] is not requested[0] and not same_pool(chain[0], requested[0])):
        raise InvalidRequest(
            f"The model `{model}` does not support {request.path}.", param="model", code="unsupported_endpoint"
        )
    return chain


def _client(request: web.Request) -> str:
    return request[PRINCIPAL].client.name


async def _previous(request: web.Request, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored conversation ``previous_response_id`` names, if the client has it."""
    previous_id = body.get("previous_response_id")
    if previous_id is None:
        return []
    if not isinstance(previous_id, str):
        raise InvalidRequest(
            "Invalid value for `previous_response_id`: expected a string.",
            param="previous_response_id",
            code="invalid_value",
        )
    with _unavailable():
        stored = await request.app[RESPONSES].get(previous_id, _client(request))
    if stored is None:
        raise NotFound(
            f"Previous response with id '{previous_id}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    return _screened(request, stored.items)


def _screened(request: web.Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored conversation scanned for secrets as the request's own prompts were (the gate saw only the
    id): the upstream sees it again. ``block`` refuses naming where (``previous_response[2].content[0].text``),
    ``redact`` forwards it redacted (and stores the new turn so), ``log`` records it."""
    mode = request[RUNTIME].config.firewall.secrets
    if mode == "off" or not items or not request[PRINCIPAL].policy.screened:
        return items
    body = {PREVIOUS: items}
    request.app[FIREWALL].scan(_client(request), mode, body, (PREVIOUS,))
    return list(body[PREVIOUS])


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    """The store's database unreachable: a 503 the client may retry; the cause (its address) in the log."""
    try:
        yield
    except StoreError as exc:
        log.warning("stored responses not reached: %s", exc)
        raise StoreUnavailable("Stored responses cannot be reached now; try again later.") from exc


async def _keep(request: web.Request, ask: Ask, response: dict[str, Any] | None) -> None:
    """Store the response, once it is final; the answer is out (or paid for) by now, so a database that
    fails leaves it unstored, in the log, rather than turning it into an error."""
    if not ask.store or response is None or response.get("status") not in _FINAL:
        return
    if not isinstance(response.get("output"), list):  # an upstream's, malformed: nothing to continue from
        log.warning("response %s not stored: it has no output list", ask.response_id)
        return
    try:
        await request.app[RESPONSES].put(_client(request), response, rs.conversation(ask.items, response))
    except (sqlite3.Error, StoreError):
        log.exception("could not store response %s", ask.response_id)


async def _stream(request: web.Request, ask: Ask, chain: tuple[Target, ...]) -> web.StreamResponse:
    providers, x = request[RUNTIME].providers, request[EXCHANGE]
    x.stream = True
    metrics = request.app[OBSERVER].metrics
    gauge = metrics.streams if metrics is not None else None
    breakers = request.app[LIVE].breakers
    async with await fallback.open_stream(
        providers, breakers, chain, ENDPOINT, ask.body, x, gauge, opener=ask.open
    ) as stream:
        x.ttfb = x.since_start()
        encoding = ask.encoding(providers[stream.target.provider], stream.target)
        resp = await sse.relay(request, stream, served_headers(stream.target, stream.attempts), encoding)
    account(request, stream.target, stream.usage)
    x.error_code = stream.error_code  # a failure after the 200 is a failure all the same
    await _keep(request, ask, encoding.response)
    return resp


@docs(
    tags=["inference"],
    summary="Create a response (OpenAI's Responses API)",
    security=AUTH,
    description="Forwarded through the model's fallback chain: natively to providers whose `endpoints` list "
    "`responses`, else as a chat completion. With `stream: true` the answer is the Responses API's "
    "Server-Sent Events (`event: response.created` ... `response.completed`), without `[DONE]`.",
    produces=_STREAMS,
    responses=error_docs(400, 401, 403, 404, 415, 429, 502, 503),
)
@request_schema(schemas.ResponseRequestSchema, required=True)
@response_schema(schemas.ResponseSchema, 200)
async def create(request: web.Request) -> web.StreamResponse:
    body = request[BODY]
    chain = _chain(request)
    ask = Ask(body, await _previous(request, body))
    if body.get("stream") is True:
        return await _stream(request, ask, chain)
    x = request[EXCHANGE]
    served = await fallback.complete(
        request[RUNTIME].providers, request.app[LIVE].breakers, chain, ENDPOINT, body, x, call=ask.call
    )
    response = served.result
    account(request, served.target, rs.chat_usage(response.get("usage")))
    await _keep(request, ask, response)
    return served_answer(request, served.target, served.attempts, response)


_STORED_ERRORS: dict[int, dict[str, Any]] = {
    401: error_docs(401)[401],
    404: {"schema": schemas.ErrorSchema, "description": "This client has no such response (or it expired)"},
    503: {"schema": schemas.ErrorSchema, "description": "The stored responses' database is unreachable now"},
}


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param="response_id")


@docs(
    tags=["inference"],
    summary="Get a stored response",
    security=AUTH,
    description="A response this client created with `store` not false, within `responses.ttl`.",
    responses=_STORED_ERRORS,
)
@response_schema(schemas.ResponseSchema, 200)
async def retrieve(request: web.Request) -> web.Response:
    response_id = request.match_info["id"]
    with _unavailable():
        stored = await request.app[RESPONSES].get(response_id, _client(request))
    if stored is None:
        raise _not_found(response_id)
    return json_answer(stored.response)


@docs(tags=["inference"], summary="Delete a stored response", security=AUTH, responses=_STORED_ERRORS)
@response_schema(schemas.ResponseDeletedSchema, 200)
async def delete(request: web.Request) -> web.Response:
    response_id = request.match_info["id"]
    with _unavailable():
        deleted = await request.app[RESPONSES].delete(response_id, _client(request))
    if not deleted:
        raise _not_found(response_id)
    return json_answer({"id": response_id, "object": "response", "deleted": True})
