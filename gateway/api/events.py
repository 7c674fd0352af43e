"""Relaying an OpenAI-shaped stream to the client as Server-Sent Events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import hdrs, web
from multidict import istr

from gateway import jsonx
from gateway.errors import GatewayError, InternalError, ServerShuttingDown, UpstreamInvalidResponse
from gateway.keys import SHUTDOWN
from gateway.routing.breaker import Verdict
from gateway.routing.router import Target
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


class Outcome:
    """One relayed stream's usage and failure, for its handler; and where its usage chunk goes.

    The gateway always asks upstreams for the usage chunk, which OpenAI sends last, with no choices.
    A client that asked for it too (``usage_apart``: ``stream_options.include_usage``) gets it so. For
    any other, the usage rides on the last chunk that has choices (the finish_reason one), because a
    chunk without choices breaks the common ``chunk.choices[0]`` loop: from the first finish_reason on,
    the last chunk of a batch with choices waits for the next batch (the usage chunk may come in a
    later read) to learn whether it is the last. Content before the finish is never held back. A usage
    chunk with no such chunk before it is only accounted for.
    """

    __slots__ = ("usage_apart", "usage", "error_code", "_held", "_finished")

    def __init__(self, usage_apart: bool) -> None:
        self.usage_apart = usage_apart
        self.usage: dict[str, Any] | None = None
        self.error_code: str | None = None  # the code of the error event that ended it, if one did
        self._held: dict[str, Any] | None = None
        self._finished = False

    def place(self, chunks: list[dict[str, Any]], done: bool) -> list[dict[str, Any]]:
        """The chunks of a batch to send now. Only a batch's end is looked at: the usage chunk comes
        last in its batch, and the chunk to hold is the last one with choices."""
        if self.usage_apart:
            return chunks
        usage = None
        if chunks and chunks[-1].get("choices") == [] and "usage" in chunks[-1]:
            usage, chunks = chunks[-1]["usage"], chunks[:-1]
        if chunks:  # anything after the chunk held: it was not the last
            if self._held is not None:
                chunks = [self._held, *chunks]
                self._held = None
            choices = chunks[-1].get("choices")
            if choices and (self._finished or _finishes(choices)):
                self._finished, self._held, chunks = True, chunks[-1], chunks[:-1]
        if usage is not None and self._held is not None:
            self._held["usage"] = usage
        return chunks + self.held() if done else chunks

    def held(self) -> list[dict[str, Any]]:
        """The chunk still waiting, if any, to send before the stream ends."""
        chunk, self._held = self._held, None
        return [chunk] if chunk is not None else []


def _finishes(choices: Any) -> bool:
    for choice in choices:
        if isinstance(choice, dict) and choice.get("finish_reason"):
            return True
    return False


def _events(chunks: list[dict[str, Any]]) -> bytes:
    return b"data: " + b"\n\ndata: ".join(jsonx.dumps_all(chunks)) + b"\n\n" if chunks else b""


def _encode(batch: StreamBatch, model: str, seen: Outcome) -> bytes:
    for chunk in batch.chunks:
        chunk["model"] = model
        if chunk.get("usage"):
            seen.usage = chunk["usage"]
    data = _events(seen.place(batch.chunks, batch.done))
    return data + DONE if batch.done else data


async def relay(
    request: web.Request,
    target: Target,
    first: StreamBatch,
    rest: AsyncIterator[StreamBatch],
    chat: bool,
    headers: dict[str, str],
    verdict: Verdict,
    seen: Outcome,
) -> web.StreamResponse:
    """Send the ``first`` batch and every later one, ``model`` set to the target that served them;
    ``seen`` places the usage and learns it.

    After the first byte a failure can no longer change the status: it becomes one final error
    event, then ``[DONE]``, and the stream ends cleanly (and counts against the target's health);
    ``seen.error_code`` is that event's code.
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
        await _end_with(
            resp,
            UpstreamInvalidResponse(
                f"The stream from {target.id} failed mid-way: {exc.reason}", code="stream_interrupted"
            ),
            seen,
        )
    except ConnectionError:
        log.info("client went away during a stream from %s", target.id)
    except asyncio.CancelledError:
        if not request.app[SHUTDOWN].over:  # the client went away and aiohttp cancelled the handler
            raise
        # the shutdown's deadline (gateway.shutdown): the stream ends in words, and the handler returns
        err = ServerShuttingDown("The server is shutting down; the stream was ended before it finished.")
        await _end_with(resp, err, seen)
    except Exception:
        log.exception("unhandled error during a stream from %s", target.id)
        await _end_with(resp, InternalError("The server had an error while processing your request."), seen)
    finally:
        if not judged:  # the client left, or the gateway failed: nothing learnt about the target
            verdict.abandoned()
        await rest.aclose()  # type: ignore[attr-defined]
    return resp


async def _send(resp: web.StreamResponse, batch: StreamBatch, model: str, seen: Outcome) -> None:
    if batch.done:
        await resp.write_eof(_encode(batch, model, seen))  # the last events and the end in one write
    else:
        await resp.write(_encode(batch, model, seen))


async def _end_with(resp: web.StreamResponse, err: GatewayError, seen: Outcome) -> None:
    """The chunk still held back, then the error event and ``[DONE]``; the failure noted in ``seen``."""
    seen.error_code = err.code
    if not resp.prepared:
        return
    try:
        await resp.write(_events(seen.held()) + error_event(err) + DONE)
    except ConnectionError:
        pass
