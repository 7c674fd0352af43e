"""Asking an upstream which models it has (a GET with the provider's own headers)."""

from __future__ import annotations

from typing import Any

import aiohttp

from providers import http
from providers.base import Provider, UpstreamInvalid, UpstreamUnavailable

MODELS_TIMEOUT = 30.0


async def get_json(provider: Provider, url: str, headers: dict[str, str]) -> dict[str, Any]:
    t = provider.config.timeouts
    timeout = aiohttp.ClientTimeout(total=min(t.total, MODELS_TIMEOUT), connect=t.connect)
    try:
        async with provider.session.get(url, headers=headers, timeout=timeout) as resp:
            await http.check_status(resp, provider.secret)
            doc = await http.read_json(resp)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise UpstreamUnavailable(f"cannot list models ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise UpstreamInvalid("model list is not a JSON object")
    return doc
