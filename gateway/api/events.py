"""Relaying an OpenAI-shaped stream to the client as Server-Sent Events."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import hdrs, web
from multidict import istr

from gateway import jsonx
from gateway.errors import GatewayError, InternalError, ServerShuttingDown, UpstreamInvalidResponse
from gateway.keys import SHUTDOWN
from gateway.routing.stream import Stream
from providers.base import ProviderError, StreamBatch

log = logging.getLogger("localrouter.sse")

HEADERS: dict[str, str] = {  # names as aiohttp's header dict keeps them (case-folded once, here)
    hdrs.CONTENT_TYPE: "text/event-stream",
    hdrs.CACHE_CONTROL: "no-cache, no-store",
    istr("X-Accel-Buffering"): "no",
}
DONE = b"data: [DONE]\n\n"


class EventStreamResponse(web.StreamResponse):
    """Headers go out with the first events, in one write. The relay prepares the response only
    once it holds them, so nothing waits; aiohttp's own Response does the same through this flag,
    and an aiohttp without it would simply send the headers on their own again."""

    _send_headers_immediately = False


def error_event(err: GatewayError) -> bytes:
    return b"data: " + jsonx.dumps(err.body()) + b"\n\n"


def _first(chunk: dict[str, Any]) -> dict[str, Any]:
    """The first chat chunk carries the role, as OpenAI's does, whatever the upstream sent."""
    choices = chunk.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta")
        if isinstance(delta, dict) and "role" not in delta:
            delta["role"] = "assistant"
    return chunk


def _events(chunks: list[dict[str, Any]]) -> bytes:
    return b"data: " + b"\n\ndata: ".join(jsonx.dumps_all(chunks)) + b"\n\n" if chunks else b""


def _encode(batch: StreamBatch, model: str, stream: Stream) -> bytes:
    for chunk in batch.chunks:
        chunk["model"] = model
        if chunk.get("usage"):
            stream.usage = chunk["usage"]
    data = _events(stream.place(batch.chunks, batch.done))
    return data + DONE if batch.done else data


async def relay(request: web.Request, stream: Stream, headers: dict[str, str]) -> web.StreamResponse:
    """Send the ``stream``'s first batch and every later one, ``model`` set to the target that served
    them, with ``headers`` besides the event stream's own; the stream places the usage and learns it.

    After the first byte a failure can no longer change the status: it becomes one final error
    event, then ``[DONE]``, and the stream ends cleanly (and counts against the target's health);
    ``stream.error_code`` is that event's code.
    """
    resp = EventStreamResponse(headers={**HEADERS, **headers})
    model = stream.target.id
    try:
        await resp.prepare(request)
        if stream.endpoint == "chat" and stream.first.chunks:
            _first(stream.first.chunks[0])
        await _send(resp, stream.first, model, stream)
        async for batch in stream.rest:
            await _send(resp, batch, model, stream)
        stream.succeeded()
    except ProviderError as exc:
        log.warning("stream from %s failed mid-way: %s", model, exc.reason)
        stream.failed()
        await _end_with(
            resp,
            UpstreamInvalidResponse(f"The stream from {model} failed mid-way: {exc.reason}", code="stream_interrupted"),
            stream,
        )
    except ConnectionError:
        log.info("client went away during a stream from %s", model)
    except asyncio.CancelledError:
        if not request.app[SHUTDOWN].over:  # the client went away and aiohttp cancelled the handler
            raise
        # the shutdown's deadline (gateway.shutdown): the stream ends in words, and the handler returns
        err = ServerShuttingDown("The server is shutting down; the stream was ended before it finished.")
        await _end_with(resp, err, stream)
    except Exception:
        log.exception("unhandled error during a stream from %s", model)
        await _end_with(resp, InternalError("The server had an error while processing your request."), stream)
    return resp


async def _send(resp: web.StreamResponse, batch: StreamBatch, model: str, stream: Stream) -> None:
    if batch.done:
        await resp.write_eof(_encode(batch, model, stream))  # the last events and the end in one write
    else:
        await resp.write(_encode(batch, model, stream))


async def _end_with(resp: web.StreamResponse, err: GatewayError, stream: Stream) -> None:
    """The chunk still held back, then the error event and ``[DONE]``; the failure noted in the stream."""
    stream.error_code = err.code
    if not resp.prepared:
        return
    try:
        await resp.write(_events(stream.held()) + error_event(err) + DONE)
    except ConnectionError:
        pass
