"""Asking an upstream which models it has (a GET with the provider's own headers)."""

from __future__ import annotations

import os
from typing import Any

import aiohttp

from providers.failures import UpstreamInvalid, UpstreamUnavailable
from providers.transport import http
from providers.transport.caller import Caller

MODELS_TIMEOUT = 30.0


async def get_json(provider: Caller, url: str, headers: dict[str, str]) -> dict[str, Any]:
    t = provider.config.timeouts
    timeout = aiohttp.ClientTimeout(total=min(t.total, MODELS_TIMEOUT), connect=t.connect)
    try:
        async with provider.session.get(url, headers=headers, timeout=timeout) as resp:
            await http.check_status(resp, provider.secret)
            doc = await http.read_json(resp)
    except aiohttp.ClientConnectorError as exc:
        # the OS's words ("connection refused") tell an operator more than the exception's class
        error = exc.os_error
        reason = os.strerror(error.errno) if error.errno and error.errno > 0 else error.strerror or type(error).__name__
        raise UpstreamUnavailable(f"cannot connect ({reason.lower()})") from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise UpstreamUnavailable(f"cannot list models ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise UpstreamInvalid("model list is not a JSON object")
    return doc
