"""HTTP to an upstream: the one place where network failures and statuses are classified."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from gateway import jsonx
from gateway.config import Timeouts
from providers.base import UpstreamInvalid, UpstreamRateLimited, UpstreamRejected, UpstreamUnavailable

MAX_ERROR_BODY = 64 * 1024
MAX_RETRY_AFTER = 3600.0
CLIENT_FAULT_STATUSES = frozenset({400, 413, 422})


def client_timeout(timeouts: Timeouts, stream: bool) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for one kind of call. A plain answer's first byte and every later read are
    bounded by aiohttp's own ``sock_read``; a stream's first byte gets a timer of its own in
    :func:`send` (its later reads are bounded by ``idle`` instead)."""
    return aiohttp.ClientTimeout(total=timeouts.total, sock_connect=timeouts.connect,
                                 sock_read=None if stream else timeouts.first_byte)


async def send(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeouts: Timeouts,
    timeout: aiohttp.ClientTimeout,
) -> aiohttp.ClientResponse:
    """POST ``body``; the response once its headers arrived. The caller releases it."""
    try:
        if timeout.sock_read is not None:
            return await session.post(url, data=body, headers=headers, timeout=timeout)
        async with asyncio.timeout(timeouts.first_byte):
            return await session.post(url, data=body, headers=headers, timeout=timeout)
    except TimeoutError:
        raise UpstreamUnavailable(f"no response within {timeouts.first_byte:g}s") from None
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamUnavailable(f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})") from None
    except (aiohttp.ClientError, ConnectionError) as exc:
        raise UpstreamUnavailable(f"connection failed ({type(exc).__name__})") from None


async def read_body(resp: aiohttp.ClientResponse) -> bytes:
    try:
        return await resp.read()
    except TimeoutError:
        raise UpstreamUnavailable("timed out reading the response") from None
    except (aiohttp.ClientError, ConnectionError) as exc:
        raise UpstreamUnavailable(f"response interrupted ({type(exc).__name__})") from None


async def read_json(resp: aiohttp.ClientResponse) -> Any:
    return parse_json(await read_body(resp))


def parse_json(raw: bytes) -> Any:
    try:
        return jsonx.loads(raw)
    except ValueError:
        raise UpstreamInvalid("response is not JSON") from None


async def check_status(resp: aiohttp.ClientResponse, secret: str | None) -> None:
    """Raise the failure an error status stands for; ``secret`` is scrubbed from any message."""
    status = resp.status
    if status < 300:
        return
    message, param, code = await _error_details(resp)
    if secret:
        message = message.replace(secret, "[redacted]")
    if status in CLIENT_FAULT_STATUSES:
        raise UpstreamRejected(status, message or f"upstream rejected the request ({status})", param, code)
    if status == 429:
        raise UpstreamRateLimited("rate limited (429)", retry_after(resp.headers))
    if status in (401, 403):
        raise UpstreamUnavailable(f"refused the gateway's credentials ({status}); check the provider's api_key",
                                  retryable=False)
    detail = f": {message[:200]}" if message else ""
    raise UpstreamUnavailable(f"answered {status}{detail}")


async def _error_details(resp: aiohttp.ClientResponse) -> tuple[str, str | None, str | None]:
    try:
        raw = await resp.content.read(MAX_ERROR_BODY)
    except (aiohttp.ClientError, ConnectionError, TimeoutError):
        return "", None, None
    try:
        doc = jsonx.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip(), None, None
    err = doc.get("error", doc) if isinstance(doc, dict) else doc
    if isinstance(err, dict):
        param, code = err.get("param"), err.get("code")
        return (str(err.get("message") or ""), param if isinstance(param, str) else None,
                code if isinstance(code, str) else None)
    return str(err), None, None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (delta or HTTP date), capped; None if absent or bad."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
