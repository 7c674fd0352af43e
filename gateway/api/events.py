"""Relaying an OpenAI-shaped stream to the client as Server-Sent Events."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from aiohttp import hdrs, web
from multidict import istr

from gateway import jsonx
from gateway.cache import Recording
from gateway.errors import GatewayError, InternalError, ServerShuttingDown, UpstreamInvalidResponse
from gateway.keys import CACHE_RECORDING, SHUTDOWN
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


class Encoding(Protocol):
    """How one stream's batches are written for its client: the chat format below, or a dialect's
    (gateway.dialects) for the endpoints that speak one."""

    def batch(self, batch: StreamBatch, stream: Stream) -> bytes:
        """The bytes of ``batch`` (of the last one: with the stream's end); note its usage in ``stream``."""

    def failure(self, err: GatewayError, stream: Stream) -> bytes:
        """The bytes that end the stream after ``err``, once bytes went out."""


class ChatEncoding:
    """OpenAI's chunks as ``data:`` events, ``model`` set to the target that served them, ending with
    ``data: [DONE]``; a failure is one last error event, then ``[DONE]``."""

    __slots__ = ("_role",)

    def __init__(self, role: bool) -> None:
        self._role = role  # chat: the first chunk carries the role, as OpenAI's does

    def batch(self, batch: StreamBatch, stream: Stream) -> bytes:
        if self._role and batch.chunks:
            self._role = False
            _first(batch.chunks[0])
        model = stream.target.id
        for chunk in batch.chunks:
            chunk["model"] = model
            if chunk.get("usage"):
                stream.usage = chunk["usage"]
        data = _events(stream.place(batch.chunks, batch.done))
        return data + DONE if batch.done else data

    def failure(self, err: GatewayError, stream: Stream) -> bytes:
        return _events(stream.held()) + error_event(err) + DONE


class Recorded:
    """An encoding whose bytes are also kept in a :class:`Recording`, for the response cache."""

    __slots__ = ("_encoding", "_recording")

    def __init__(self, encoding: Encoding, recording: Recording) -> None:
        self._encoding, self._recording = encoding, recording

    def batch(self, batch: StreamBatch, stream: Stream) -> bytes:
        data = self._encoding.batch(batch, stream)
        self._recording.add(data, batch.done)
        return data

    def failure(self, err: GatewayError, stream: Stream) -> bytes:
        self._recording.spoil()
        return self._encoding.failure(err, stream)


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


async def relay(
    request: web.Request, stream: Stream, headers: dict[str, str], encoding: Encoding | None = None
) -> web.StreamResponse:
    """Send the ``stream``'s first batch and every later one as ``encoding`` writes them (by default the
    chat format), with ``headers`` besides the event stream's own.

    After the first byte a failure can no longer change the status: it becomes the encoding's end
    (chat: one final error event, then ``[DONE]``), the stream ends cleanly (and counts against the
    target's health), and ``stream.error_code`` is that error's code.
    """
    resp = EventStreamResponse(headers={**HEADERS, **headers})
    model = stream.target.id
    encoding = encoding if encoding is not None else ChatEncoding(stream.endpoint == "chat")
    recording = request.get(CACHE_RECORDING)
    if recording is not None:  # a strategy with a response cache keeps the stream (middlewares.cached)
        encoding = Recorded(encoding, recording)
    try:
        await resp.prepare(request)
        await _send(resp, stream.first, encoding, stream)
        async for batch in stream.rest:
            await _send(resp, batch, encoding, stream)
        stream.succeeded()
    except ProviderError as exc:
        log.warning("stream from %s failed mid-way: %s", model, exc.reason)
        stream.failed()
        await _end_with(
            resp,
            UpstreamInvalidResponse(f"The stream from {model} failed mid-way: {exc.reason}", code="stream_interrupted"),
            stream,
            encoding,
        )
    except ConnectionError:
        log.info("client went away during a stream from %s", model)
    except asyncio.CancelledError:
        if not request.app[SHUTDOWN].over:  # the client went away and aiohttp cancelled the handler
            raise
        # the shutdown's deadline (gateway.shutdown): the stream ends in words, and the handler returns
        err = ServerShuttingDown("The server is shutting down; the stream was ended before it finished.")
        await _end_with(resp, err, stream, encoding)
    except Exception:
        log.exception("unhandled error during a stream from %s", model)
        await _end_with(resp, InternalError("The server had an error while processing your request."), stream, encoding)
    return resp


async def _send(resp: web.StreamResponse, batch: StreamBatch, encoding: Encoding, stream: Stream) -> None:
    if batch.done:
        await resp.write_eof(encoding.batch(batch, stream))  # the last events and the end in one write
    else:
        await resp.write(encoding.batch(batch, stream))


async def _end_with(resp: web.StreamResponse, err: GatewayError, stream: Stream, encoding: Encoding) -> None:
    """The encoding's end after ``err`` (chat: the chunk still held back, then the error event and
    ``[DONE]``); the failure noted in the stream."""
    stream.error_code = err.code
    if not resp.prepared:
        return
    try:
        await resp.write(encoding.failure(err, stream))
    except ConnectionError:
        pass
