"""The access log: one JSON line per request, written in batches off the request path.

Lines are buffered and written every ``interval`` seconds from a thread, so neither a request nor the
event loop ever waits on a slow or blocked stdout (a full pipe, a stalled log driver); past ``cap``
bytes waiting, new lines are dropped and counted instead of growing memory. Never a secret; never a
prompt or answer unless ``logging.bodies`` is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import IO, Any

import orjson

from gateway.observability.exchange import Exchange

log = logging.getLogger("localrouter.access")


def line(x: Exchange, bodies: bool) -> dict[str, Any]:
    usage = x.usage or {}
    doc: dict[str, Any] = {
        "time": round(x.wall, 3),
        "request_id": x.id,
        "method": x.method,
        "path": x.path,
        "endpoint": x.endpoint,
        "remote": x.remote,
        "client": x.client,
        "model_requested": x.model_requested,
        "model": x.target.id if x.target else None,
        "provider": x.target.provider if x.target else None,
        "status": x.status,
        "attempts": x.attempts,
        "stream": x.stream,
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "cost_usd": x.cost_usd,
        "duration_ms": round(x.duration * 1000, 3),
        "ttfb_ms": round(x.ttfb * 1000, 3) if x.ttfb is not None else None,
    }
    if x.error_code:
        doc["error_code"] = x.error_code
    if x.cache is not None:
        doc["cache"] = x.cache
    if x.mcp is not None:
        doc["mcp_server"] = x.mcp[0]
    if x.failures:
        doc["failures"] = [f"{target}: {kind}" for target, _, kind in x.failures]
    if bodies:
        doc["request_body"], doc["response_body"] = x.request_body, x.response_body
    return doc


class AccessLog:
    def __init__(self, out: IO[bytes] | None = None, interval: float = 0.2, cap: int = 16 * 1024 * 1024) -> None:
        self._out = out if out is not None else sys.stdout.buffer
        self._interval, self._cap = interval, cap
        self._buf: list[bytes] = []
        self._size = 0
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._flusher())

    def write(self, doc: dict[str, Any]) -> None:
        if self._size >= self._cap:
            self.dropped += 1
            if self.dropped % 10_000 == 1:
                log.warning("access log lines dropped: stdout does not keep up (%d so far)", self.dropped)
            return
        data = orjson.dumps(doc, default=str) + b"\n"
        self._buf.append(data)
        self._size += len(data)

    def _take(self) -> bytes:
        data, self._buf, self._size = b"".join(self._buf), [], 0
        return data

    def _write(self, data: bytes) -> None:
        try:
            self._out.write(data)
            self._out.flush()
        except (OSError, ValueError) as exc:  # a closed or broken stdout must not break anything
            log.warning("access log not written: %s", exc)

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._buf:
                await asyncio.shield(asyncio.to_thread(self._write, self._take()))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._buf:
            self._write(self._take())
