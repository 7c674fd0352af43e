"""HTTP to an upstream: the one place where network failures and statuses are classified."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from gateway import jsonx
from providers.failures import UpstreamInvalid, UpstreamRateLimited, UpstreamRejected, UpstreamUnavailable, redact
from providers.transport.caller import Caller
from providers.transport.tracecontext import TRACEPARENT

MAX_ERROR_BODY = 64 * 1024
MAX_RETRY_AFTER = 3600.0
CLIENT_FAULT_STATUSES = frozenset({400, 413, 422})


async def fetch(provider: Caller, url: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    """POST ``body`` and read the whole (non-stream) answer: its headers within ``first_byte``, then its
    body within ``first_byte`` more, both within ``total``. An error status raises its failure."""
    timeouts = provider.config.timeouts
    began, first = time.monotonic(), min(timeouts.first_byte, timeouts.total)
    answered = False
    try:
        with provider.deadlines.limit(first) as limit:
            resp = await _post(provider, url, body, headers)
            answered = True
            try:
                limit.restart(min(timeouts.first_byte, timeouts.total - (time.monotonic() - began)))
                await check_status(resp, provider.secret)
                return await read_body(resp)
            finally:
                resp.release()
    except TimeoutError:
        raise UpstreamUnavailable(
            "timed out reading the response" if answered else f"no response within {first:g}s"
        ) from None


async def send(
    provider: Caller, url: str, body: bytes, headers: Mapping[str, str]
) -> tuple[aiohttp.ClientResponse, float]:
    """POST ``body`` for a stream: the response once its headers arrived (within ``first_byte``), and
    when the call's ``total`` ends (``time.monotonic``), for the stream's reader to keep. The caller
    releases the response."""
    timeouts = provider.config.timeouts
    ends_at, first = time.monotonic() + timeouts.total, min(timeouts.first_byte, timeouts.total)
    try:
        with provider.deadlines.limit(first):
            return await _post(provider, url, body, headers), ends_at
    except TimeoutError:
        raise UpstreamUnavailable(f"no response within {first:g}s") from None


async def _post(provider: Caller, url: str, body: bytes, headers: Mapping[str, str]) -> aiohttp.ClientResponse:
    traceparent = TRACEPARENT.get()
    if traceparent is not None:
        headers = {**headers, "traceparent": traceparent}
    try:
        return await provider.session.post(url, data=body, headers=headers, timeout=provider.client_timeout)
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamUnavailable(f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})") from None
    except aiohttp.ConnectionTimeoutError:
        config = provider.config
        raise UpstreamUnavailable(
            f"no connection within {config.timeouts.connect:g}s (all {config.max_connections} "
            "of its connections busy, or connecting timed out)"
        ) from None
    except (aiohttp.ClientError, ConnectionError) as exc:
        raise UpstreamUnavailable(f"connection failed ({type(exc).__name__})") from None


async def read_body(resp: aiohttp.ClientResponse) -> bytes:
    try:
        return await resp.read()
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
    # all three go back to the client (param and code verbatim): an echo of the credential may be in any
    message = redact(message, secret)
    param, code = (redact(text, secret) if text is not None else None for text in (param, code))
    if status in CLIENT_FAULT_STATUSES:
        raise UpstreamRejected(status, message or f"upstream rejected the request ({status})", param, code)
    if status == 429:
        raise UpstreamRateLimited("rate limited (429)", retry_after(resp.headers))
    if status in (401, 403):
        raise UpstreamUnavailable(
            f"refused the gateway's credentials ({status}); check the provider's api_key", retryable=False
        )
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
        return (
            str(err.get("message") or ""),
            param if isinstance(param, str) else None,
            code if isinstance(code, str) else None,
        )
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
