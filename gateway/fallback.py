"""One loop over the targets of a chain: try each, collect each failure, give up with all of them."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any

from gateway.errors import AllProvidersFailed, GatewayError, RateLimited, UpstreamInvalidResponse, for_status
from gateway.routing import Target
from providers.base import Provider, ProviderError, StreamBatch, UpstreamInvalid, UpstreamRejected

log = logging.getLogger("localrouter.fallback")

Failures = list[tuple[Target, ProviderError]]


async def complete(
    providers: Mapping[str, Provider], chain: tuple[Target, ...], endpoint: str, body: dict[str, Any]
) -> tuple[Target, dict[str, Any]]:
    """The first target's answer that succeeds; a rejected request ends the loop at once."""
    failures: Failures = []
    for target in chain:
        try:
            return target, await providers[target.provider].infer(endpoint, body, target.model)
        except ProviderError as exc:
            _failed(failures, target, exc)
        except UpstreamRejected as exc:
            raise rejected(target, exc) from None
    raise exhausted(failures)


async def open_stream(
    providers: Mapping[str, Provider], chain: tuple[Target, ...], endpoint: str, body: dict[str, Any]
) -> tuple[Target, StreamBatch, AsyncIterator[StreamBatch]]:
    """The first target whose stream yields a first batch: fallback is decided there, never later."""
    failures: Failures = []
    for target in chain:
        stream = providers[target.provider].infer_stream(endpoint, body, target.model)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            _failed(failures, target, UpstreamInvalid("empty stream"))
            continue
        except ProviderError as exc:
            _failed(failures, target, exc)
            continue
        except UpstreamRejected as exc:
            raise rejected(target, exc) from None
        except BaseException:
            await stream.aclose()  # type: ignore[attr-defined]
            raise
        if not first.chunks:
            _failed(failures, target, UpstreamInvalid("empty stream"))
            continue
        return target, first, stream
    raise exhausted(failures)


def _failed(failures: Failures, target: Target, exc: ProviderError) -> None:
    log.warning("target %s failed: %s", target.id, exc.reason)
    failures.append((target, exc))


def rejected(target: Target, exc: UpstreamRejected) -> GatewayError:
    log.info("target %s rejected the request (%d): %s", target.id, exc.status, exc.message)
    return for_status(exc.status, exc.message, param=exc.param, code=exc.code)


def exhausted(failures: Failures) -> GatewayError:
    """503 naming every target and why; 429 when all were rate limited; 502 when all were invalid."""
    detail = "; ".join(f"{t.id}: {e.reason}" for t, e in failures)
    kinds = {e.kind for _, e in failures}
    if kinds == {"rate_limited"}:
        waits = [e.retry_after for _, e in failures if getattr(e, "retry_after", None) is not None]
        retry = max(1, math.ceil(min(waits))) if waits else 1
        return RateLimited(f"All providers are rate limited ({detail}).", headers={"Retry-After": str(retry)})
    if kinds == {"invalid"}:
        return UpstreamInvalidResponse(f"Upstream provider returned an invalid response ({detail}).")
    return AllProvidersFailed(f"All providers failed ({detail}).")
