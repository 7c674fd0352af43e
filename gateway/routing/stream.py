"""One stream served to a client, from its target's first batch to its end: what opening a stream
through the fallback loop returns (:func:`gateway.routing.fallback.open_stream`), used as ``async with``.

It owns what lives as long as the stream: the first batch and the iterator of the rest (closed on exit),
its target's breaker verdict (abandoned on exit unless the stream was judged), the usage it carried and
the code of the error event that ended it, and its place in the gauge of streams in flight (taken on
enter, given back on exit; a pool's target counts it in flight until then too)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from gateway.routing.breaker import Verdict
from gateway.routing.router import Target
from providers.base import StreamBatch


class Stream:
    """A stream opened for a client. Its relay sends ``first``, then each batch of ``rest``, each through
    :meth:`place`, and says how it ended (:meth:`succeeded`, :meth:`failed`, or neither).

    Where the usage chunk goes: the gateway always asks upstreams for it, and OpenAI sends it last, with no
    choices. A client that asked for it too (``usage_apart``: ``stream_options.include_usage``) gets it
    so. For any other, the usage rides on the last chunk that has choices (the finish_reason one),
    because a chunk without choices breaks the common ``chunk.choices[0]`` loop: from the first
    finish_reason on, the last chunk of a batch with choices waits for the next batch (the usage chunk
    may come in a later read) to learn whether it is the last. Content before the finish is never held
    back. A usage chunk with no such chunk before it is only accounted for; any other chunk without
    choices (Azure opens its streams with one) is left out.
    """

    __slots__ = (
        "target",
        "attempts",
        "endpoint",
        "first",
        "rest",
        "usage",
        "error_code",
        "_verdict",
        "_judged",
        "_gauge",
        "_usage_apart",
        "_held",
        "_finished",
    )

    def __init__(
        self,
        target: Target,
        attempts: int,
        endpoint: str,
        first: StreamBatch,
        rest: AsyncGenerator[StreamBatch, None],
        verdict: Verdict,
        usage_apart: bool,
        gauge: list[float] | None,
    ) -> None:
        self.target = target
        self.attempts = attempts  # upstream calls made to open it, retries included
        self.endpoint = endpoint
        self.first = first
        self.rest = rest
        self.usage: dict[str, Any] | None = None  # the last usage an upstream chunk carried
        self.error_code: str | None = None  # the code of the error event that ended it, if one did
        self._verdict = verdict
        self._judged = False
        self._gauge = gauge  # the metrics' streams in flight, if metrics are kept
        self._usage_apart = usage_apart
        self._held: dict[str, Any] | None = None
        self._finished = False

    async def __aenter__(self) -> Stream:
        if self._gauge is not None:
            self._gauge[0] += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if not self._judged:  # the client left, or the gateway failed: nothing learnt about the target
                self._verdict.abandoned()
            await self.rest.aclose()
        finally:
            if self._gauge is not None:
                self._gauge[0] -= 1
            if self.target.member is not None:  # a pool's target: its request in flight ends with the stream
                self.target.member.ended()

    def succeeded(self) -> None:
        """Every batch reached the client: the target is healthy."""
        self._judged = True
        self._verdict.succeeded()

    def failed(self) -> None:
        """The upstream failed mid-way: it counts against the target's health."""
        self._judged = True
        self._verdict.failed()

    def place(self, chunks: list[dict[str, Any]], done: bool) -> list[dict[str, Any]]:
        """The chunks of a batch to send now. Only a batch's end is looked at: the usage chunk comes
        last in its batch, and the chunk to hold is the last one with choices."""
        if self._usage_apart:
            return chunks
        usage = None
        if chunks and chunks[-1].get("choices") == [] and "usage" in chunks[-1]:
            usage, chunks = chunks[-1]["usage"], chunks[:-1]
        if any(chunk.get("choices") == [] for chunk in chunks):  # a note, as Azure's first (prompt_filter_results)
            chunks = [chunk for chunk in chunks if chunk.get("choices") != []]
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


def usage_apart(body: dict[str, Any]) -> bool:
    """The client asked for the usage chunk as OpenAI sends it (``stream_options.include_usage``)."""
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _finishes(choices: Any) -> bool:
    for choice in choices:
        if isinstance(choice, dict) and choice.get("finish_reason"):
            return True
    return False
