"""Reading an upstream's Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from providers.failures import UpstreamInvalid, UpstreamUnavailable

MAX_EVENT_BYTES = 8 * 1024 * 1024


class EventReader:
    """The ``data`` of the events that each network read completes, as one batch per read.

    Batching by read lets the relay write once per read instead of once per event. A class, not an
    async generator: a stream left after ``[DONE]`` leaves no generator for the loop to finalize in
    a task of its own. A wait for data longer than ``idle`` seconds is a failure, and so is a read after
    ``ends_at`` (``time.monotonic``: the call's total timeout).
    """

    __slots__ = ("_guard", "_buf", "_eof")

    def __init__(self, resp: aiohttp.ClientResponse, idle: float, ends_at: float) -> None:
        self._guard = _IdleGuard(resp, idle, ends_at)
        self._buf = b""
        self._eof = False

    @staticmethod
    def _parse(text: bytes) -> tuple[list[bytes], bytes]:
        """What the complete units of ``text`` carry, and the unfinished rest."""
        return _events(text)

    @staticmethod
    def _item(unit: bytes) -> bytes | None:
        """What a unit carries (None: nothing, e.g. a comment or a blank line)."""
        return _data(unit)

    async def batch(self) -> list[bytes] | None:
        """The next non-empty batch, or None at the end of the stream."""
        while not self._eof:
            chunk = await self._guard.read()
            if not chunk:
                self._eof = True
                last = self._item(self._buf)
                return [last] if last is not None else None
            batch, self._buf = self._parse(self._buf + chunk)
            if len(self._buf) > MAX_EVENT_BYTES:
                raise UpstreamInvalid("stream event too large")
            if batch:
                return batch
        return None

    def close(self) -> None:
        self._guard.close()


class LineReader(EventReader):
    """Newline-delimited JSON (Ollama's streams): the complete lines of each read, as one batch."""

    __slots__ = ()

    @staticmethod
    def _parse(text: bytes) -> tuple[list[bytes], bytes]:
        *lines, rest = text.split(b"\n")
        return [line for line in map(LineReader._item, lines) if line is not None], rest

    @staticmethod
    def _item(unit: bytes) -> bytes | None:
        return unit.strip() or None


def _events(text: bytes) -> tuple[list[bytes], bytes]:
    """The data of the complete events in ``text``, and the unfinished rest."""
    end = text.rfind(b"\n\n") + 2
    if end > 2 and text.startswith(b"data: ") and b"\r" not in text:
        # the shape nearly every read has: only one-line ``data: `` events, split in one go; no newline
        # left in any piece means there was nothing else (no comment, no second line, no other field).
        # It earns its place on the stream endpoint (bench/NOTES.md); a property test holds it equal to
        # the general parser below.
        found = text[6 : end - 2].split(b"\n\ndata: ")
        if b"\n" not in b"".join(found):
            return found, text[end:]
    *blocks, rest = _blocks(text)
    return [data for data in map(_data, blocks) if data is not None], rest


def _blocks(text: bytes) -> list[bytes]:
    """Split into event blocks; the last item is the unfinished rest."""
    if b"\r" in text:
        text = text.replace(b"\r\n", b"\n")
    return text.split(b"\n\n")


def _data(block: bytes) -> bytes | None:
    """The data of one event block (None if it has none: a comment, a keep-alive, an id only)."""
    if block.startswith(b"data: ") and b"\n" not in block:
        return block[6:]  # the shape nearly every event has
    data = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(data) if data else None


class _IdleGuard:
    """The idle and total timeouts of one stream with one timer for its whole life, not one per read.

    The timer re-arms itself lazily; only a read that has been waiting ``idle`` seconds fails (a
    slow client, which makes the reads wait to start, never does); past ``ends_at`` (the call's
    ``total``, by ``time.monotonic``), the next read fails.
    """

    __slots__ = ("_resp", "_idle", "_loop", "_since", "_waiting", "_handle", "_ends")

    def __init__(self, resp: aiohttp.ClientResponse, idle: float, ends_at: float) -> None:
        self._resp, self._idle = resp, idle
        self._loop = asyncio.get_running_loop()
        self._since, self._waiting = self._loop.time(), False
        self._ends = self._since + (ends_at - time.monotonic())  # on the loop's clock
        self._handle = self._loop.call_at(min(self._since + idle, self._ends), self._check)

    def _check(self) -> None:
        now = self._loop.time()
        if now >= self._ends:
            self._resp.content.set_exception(UpstreamUnavailable("stream exceeded the total timeout"))
            return
        if self._waiting and now >= self._since + self._idle:
            self._resp.content.set_exception(UpstreamUnavailable(f"stream stalled for more than {self._idle:g}s"))
            return
        at = (self._since if self._waiting else now) + self._idle
        self._handle = self._loop.call_at(min(at, self._ends), self._check)

    async def read(self) -> bytes:
        self._since, self._waiting = self._loop.time(), True
        try:
            return await self._resp.content.readany()
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise UpstreamUnavailable(f"stream interrupted ({type(exc).__name__})") from None
        finally:
            self._waiting = False

    def close(self) -> None:
        self._handle.cancel()
