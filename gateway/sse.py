"""Relaying an OpenAI-shaped stream to the client as Server-Sent Events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import hdrs, web
from multidict import istr

from gateway import jsonx
from gateway.breaker import Verdict
from gateway.errors import GatewayError, InternalError, ServerShuttingDown, UpstreamInvalidResponse
from gateway.keys import EXCHANGE, SHUTDOWN
from gateway.routing import Target
from providers.base import ProviderError, StreamBatch

log = logging.getLogger("localrouter.sse")

HEADERS = {  # names as aiohttp's header dict keeps them (case-folded once, here)
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


def _encode(batch: StreamBatch, model: str, seen: dict[str, Any]) -> bytes:
    for chunk in batch.chunks:
        chunk["model"] = model
        if chunk.get("usage"):
            seen["usage"] = chunk["usage"]
    data = b"data: " + b"\n\ndata: ".join(jsonx.dumps_all(batch.chunks)) + b"\n\n" if batch.chunks else b""
    return data + DONE if batch.done else data


async def relay(
    request: web.Request, target: Target, first: StreamBatch, rest: AsyncIterator[StreamBatch], chat: bool,
    headers: dict[str, str], verdict: Verdict, seen: dict[str, Any],
) -> web.StreamResponse:
    """Send the ``first`` batch and every later one, ``model`` set to the target that served them;
    ``seen["usage"]`` is the usage chunk's, once it went by.

    After the first byte a failure can no longer change the status: it becomes one final error
    event, then ``[DONE]``, and the stream ends cleanly (and counts against the target's health).
    """
    resp = EventStreamResponse(headers={**HEADERS, **headers})
    judged = False
    try:
        await resp.prepare(request)
        if chat and first.chunks:
            _first(first.chunks[0])
        await _send(resp, first, target.id, seen)
        async for batch in rest:
            await _send(resp, batch, target.id, seen)
        verdict.succeeded()
        judged = True
    except ProviderError as exc:
        log.warning("stream from %s failed mid-way: %s", target.id, exc.reason)
        verdict.failed()
        judged = True
        await _end_with(resp, UpstreamInvalidResponse(
            f"The stream from {target.id} failed mid-way: {exc.reason}", code="stream_interrupted"))
    except ConnectionError:
        log.info("client went away during a stream from %s", target.id)
    except asyncio.CancelledError:
        if not request.app[SHUTDOWN].over:  # the client went away and aiohttp cancelled the handler
            raise
        # the shutdown's deadline (gateway.shutdown): the stream ends in words, and the handler returns
        err = ServerShuttingDown("The server is shutting down; the stream was ended before it finished.")
        request[EXCHANGE].error_code = err.code
        await _end_with(resp, err)
    except Exception:
        log.exception("unhandled error during a stream from %s", target.id)
        await _end_with(resp, InternalError("The server had an error while processing your request."))
    finally:
        if not judged:  # the client left, or the gateway failed: nothing learnt about the target
            verdict.abandoned()
        await rest.aclose()  # type: ignore[attr-defined]
    return resp


async def _send(resp: web.StreamResponse, batch: StreamBatch, model: str, seen: dict[str, Any]) -> None:
    if batch.done:
        await resp.write_eof(_encode(batch, model, seen))  # the last events and the end in one write
    else:
        await resp.write(_encode(batch, model, seen))


async def _end_with(resp: web.StreamResponse, err: GatewayError) -> None:
    if not resp.prepared:
        return
    try:
        await resp.write(error_event(err) + DONE)
    except ConnectionError:
        pass
