"""Reading an upstream's Server-Sent Events stream, one event's data at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from providers.base import UpstreamInvalid, UpstreamUnavailable

MAX_EVENT_BYTES = 8 * 1024 * 1024


async def events(resp: aiohttp.ClientResponse, idle: float) -> AsyncIterator[list[bytes]]:
    """Yield the ``data`` of the events completed by each network read, never an empty list.

    Batching by read lets the relay write once per read instead of once per event. An idle gap
    longer than ``idle`` seconds is a failure.
    """
    buf = b""
    data: list[bytes] = []
    while True:
        chunk = await _read(resp, idle)
        if not chunk:
            break
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
    if buf.startswith(b"data:"):
        data.append(buf[5:].lstrip(b" "))
    if data:
        yield [b"\n".join(data)]


async def _read(resp: aiohttp.ClientResponse, idle: float) -> bytes:
    try:
        async with asyncio.timeout(idle):
            return await resp.content.readany()
    except TimeoutError:
        raise UpstreamUnavailable(f"stream stalled for more than {idle:g}s") from None
    except (aiohttp.ClientError, ConnectionError) as exc:
        raise UpstreamUnavailable(f"stream interrupted ({type(exc).__name__})") from None
