"""One loop over the targets of a chain: skip those cooling down, retry each as configured, collect
each failure, give up with all of them."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gateway.errors import AllProvidersFailed, GatewayError, RateLimited, UpstreamInvalidResponse, for_status
from gateway.observability.exchange import Exchange
from gateway.routing.breaker import Breakers, Verdict
from gateway.routing.loads import Member, OverBudget
from gateway.routing.router import Target
from gateway.routing.stream import Stream, usage_apart
from providers.base import CoolingDown, Provider, ProviderError, StreamBatch, UpstreamInvalid, UpstreamRejected

log = logging.getLogger("localrouter.fallback")

Failures = list[tuple[Target, ProviderError]]
T = TypeVar("T")

BACKOFF_BASE = 0.2  # seconds before the first retry, doubled for each further one
BACKOFF_CAP = 5.0
MAX_RETRY_WAIT = 10.0  # an upstream asking to wait longer than this is left for the next target
ATTEMPTS_HEADER = "x-localrouter-attempts"
OVER_BUDGET = "over_budget"  # the failure kind of a pool's target skipped because its budget is spent


@dataclass(slots=True)
class Served(Generic[T]):
    target: Target
    result: T
    attempts: int  # upstream calls made, retries included


def backoff(retry: int, exc: ProviderError) -> float | None:
    """Seconds to wait before retry number ``retry`` (0-based), or None if retrying is pointless."""
    if not exc.retryable:
        return None
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2**retry) * random.uniform(0.5, 1.0)  # jitter: no herd
    if exc.retry_after is not None:
        if exc.retry_after > MAX_RETRY_WAIT:
            return None
        delay = max(delay, exc.retry_after)
    return delay


async def _first_success(
    providers: Mapping[str, Provider],
    breakers: Breakers,
    chain: tuple[Target, ...],
    call: Callable[[Provider, Target], Awaitable[T]],
    trace: Exchange,
    settled: bool = True,
) -> Served[T]:
    """``settled``: a result is a success for the target's breaker (a stream is judged when it ends).
    ``trace`` gets each failure, the attempts and the time spent waiting on upstreams (and, traced, a span
    per attempt)."""
    if trace.tracing is not None:
        call = trace.tracing.attempts(trace, call)
    failures: Failures = []
    attempts = 0
    for target in chain:
        wait = breakers.blocked(target.id)
        if wait is not None:
            _failed(failures, target, CoolingDown(wait))
            trace.failures.append((target.id, target.provider, "cooling_down"))
            continue
        provider = providers[target.provider]
        retries = provider.config.retries
        member = target.member
        for retry in range(retries + 1):
            if member is not None and (refused := await _admit(member, breakers, target.id)) is not None:
                _failed(failures, target, refused)
                trace.failures.append((target.id, target.provider, OVER_BUDGET))
                break
            attempts += 1
            trace.attempts = attempts
            began = time.perf_counter()
            try:
                result = await (call(provider, target) if member is None else member.attempt(call, provider, target))
            except ProviderError as exc:
                trace.upstream_seconds += time.perf_counter() - began
                trace.failures.append((target.id, target.provider, exc.kind))
                opened = breakers.failed(target.id, provider.config.cooldown, reason=exc.reason)
                delay = backoff(retry, exc) if retry < retries and not opened else None
                if delay is None:
                    _failed(failures, target, exc)
                    break
                log.info(
                    "target %s failed (%s); retry %d/%d in %.2fs", target.id, exc.reason, retry + 1, retries, delay
                )
                await asyncio.sleep(delay)
                continue
            except UpstreamRejected as exc:
                trace.upstream_seconds += time.perf_counter() - began
                breakers.abandoned(target.id)  # it answered: up, but says nothing about health
                raise rejected(target, exc, attempts) from None
            except BaseException:
                breakers.abandoned(target.id)
                raise
            trace.upstream_seconds += time.perf_counter() - began
            trace.target = target
            if settled:
                breakers.succeeded(target.id)
                if member is not None:
                    member.ended()
            return Served(target, result, attempts)
    raise exhausted(failures, attempts)


async def _admit(member: Member, breakers: Breakers, target: str) -> OverBudget | None:
    """A pool's target's budget, before an attempt: a target left untried leaves its breaker's probe (if
    this request was to make it) to another request."""
    try:
        refused = await member.admit()
    except BaseException:
        breakers.abandoned(target)
        raise
    if refused is not None:
        breakers.abandoned(target)
    return refused


async def complete(
    providers: Mapping[str, Provider],
    breakers: Breakers,
    chain: tuple[Target, ...],
    endpoint: str,
    body: dict[str, Any],
    trace: Exchange,
    call: Callable[[Provider, Target], Awaitable[dict[str, Any]]] | None = None,
) -> Served[dict[str, Any]]:
    """The first target's answer that succeeds; a rejected request ends the loop at once. ``call`` asks
    one target (by default its adapter's ``infer`` of ``body`` for ``endpoint``; an endpoint of another
    dialect asks each target its own way: natively, or translated to chat)."""

    async def infer(provider: Provider, target: Target) -> dict[str, Any]:
        return await provider.infer(endpoint, body, target.model)

    return await _first_success(providers, breakers, chain, call or infer, trace)


Opened = tuple[StreamBatch, AsyncGenerator[StreamBatch, None]]
Opener = Callable[[Provider, Target], AsyncGenerator[StreamBatch, None]]


async def open_stream(
    providers: Mapping[str, Provider],
    breakers: Breakers,
    chain: tuple[Target, ...],
    endpoint: str,
    body: dict[str, Any],
    trace: Exchange,
    gauge: list[float] | None,
    opener: Opener | None = None,
) -> Stream:
    """The stream of the first target that yields a first batch: fallback is decided there, never later.
    ``gauge`` counts the streams in flight (the stream takes its place in it as it is entered). ``opener``
    opens one target's stream (by default its adapter's ``infer_stream``); with one, the batches are
    the opener's own and pass through the stream's usage placement untouched (a dialect places its own)."""

    async def call(provider: Provider, target: Target) -> Opened:
        stream = opener(provider, target) if opener else provider.infer_stream(endpoint, body, target.model)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            raise UpstreamInvalid("empty stream") from None
        except BaseException:
            await stream.aclose()
            raise
        if not first.chunks:
            await stream.aclose()
            raise UpstreamInvalid("empty stream")
        return first, stream

    served = await _first_success(providers, breakers, chain, call, trace, settled=False)
    target, (first, rest) = served.target, served.result
    verdict = Verdict(breakers, target.id, providers[target.provider].config.cooldown)
    apart = opener is not None or usage_apart(body)
    return Stream(target, served.attempts, endpoint, first, rest, verdict, apart, gauge)


def _failed(failures: Failures, target: Target, exc: ProviderError) -> None:
    log.warning("target %s failed: %s", target.id, exc.reason)
    failures.append((target, exc))


def rejected(target: Target, exc: UpstreamRejected, attempts: int) -> GatewayError:
    log.info("target %s rejected the request (%d): %s", target.id, exc.status, exc.message)
    return for_status(exc.status, exc.message, param=exc.param, code=exc.code, headers={ATTEMPTS_HEADER: str(attempts)})


def exhausted(failures: Failures, attempts: int) -> GatewayError:
    """503 naming every target and why (with Retry-After when all are cooling down); 429 when all were
    rate limited; 502 when all were invalid."""
    detail = "; ".join(f"{t.id}: {e.reason}" for t, e in failures)
    kinds = {e.kind for _, e in failures}
    headers = {ATTEMPTS_HEADER: str(attempts)}
    waits = [e.retry_after for _, e in failures if e.retry_after is not None]
    if kinds == {"rate_limited"}:
        headers["Retry-After"] = str(max(1, math.ceil(min(waits))) if waits else 1)
        return RateLimited(f"All providers are rate limited ({detail}).", headers=headers)
    if kinds == {"invalid"}:
        return UpstreamInvalidResponse(f"Upstream provider returned an invalid response ({detail}).", headers=headers)
    if failures and all(isinstance(e, CoolingDown) for _, e in failures):
        headers["Retry-After"] = str(max(1, math.ceil(min(waits))))
    return AllProvidersFailed(f"All providers failed ({detail}).", headers=headers)
