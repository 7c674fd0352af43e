"""Reading an upstream's Server-Sent Events stream, one event's data at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from providers.base import UpstreamInvalid, UpstreamUnavailable

MAX_EVENT_BYTES = 8 * 1024 * 1024


async def events(resp: aiohttp.ClientResponse, idle: float) -> AsyncIterator[list[bytes]]:
    """Yield the ``data`` of the events completed by each network read, never an empty list.

    Batching by read lets the relay write once per read instead of once per event. A wait for data
    longer than ``idle`` seconds is a failure.
    """
    guard = _IdleGuard(resp, idle)
    buf = b""
    data: list[bytes] = []
    try:
        while chunk := await guard.read():
            lines = (buf + chunk).split(b"\n")
            buf = lines.pop()
            if len(buf) > MAX_EVENT_BYTES:
                raise UpstreamInvalid("stream event too large")
            batch = []
            for line in lines:
                if line.endswith(b"\r"):
                    line = line[:-1]
                if not line:
                    if data:
                        batch.append(b"\n".join(data))
                        data = []
                elif line.startswith(b"data:"):
                    value = line[5:]
                    data.append(value[1:] if value.startswith(b" ") else value)
            if batch:
                yield batch
    finally:
        guard.close()
    if buf.startswith(b"data:"):
        data.append(buf[5:].lstrip(b" "))
    if data:
        yield [b"\n".join(data)]


class _IdleGuard:
    """The idle timeout of one stream with one timer for its whole life, not one per read.

    The timer re-arms itself lazily; only a read that has been waiting ``idle`` seconds fails (a
    slow client, which makes the reads wait to start, never does).
    """

    __slots__ = ("_resp", "_idle", "_loop", "_since", "_waiting", "_handle")

    def __init__(self, resp: aiohttp.ClientResponse, idle: float) -> None:
        self._resp, self._idle = resp, idle
        self._loop = asyncio.get_running_loop()
        self._since, self._waiting = self._loop.time(), False
        self._handle = self._loop.call_at(self._since + idle, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        if self._waiting and now >= self._since + self._idle:
            self._resp.content.set_exception(UpstreamUnavailable(f"stream stalled for more than {self._idle:g}s"))
            return
        self._handle = self._loop.call_at((self._since if self._waiting else now) + self._idle, self._check)

    async def read(self) -> bytes:
        self._since, self._waiting = self._loop.time(), True
        try:
            return await self._resp.content.readany()
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise UpstreamUnavailable(f"stream interrupted ({type(exc).__name__})") from None
        except TimeoutError:
            raise UpstreamUnavailable("stream exceeded the total timeout") from None
        finally:
            self._waiting = False

    def close(self) -> None:
        self._handle.cancel()
