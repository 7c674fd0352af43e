"""Per-client budgets: admit a request against its strategy's limits, then count what it used.

Requests are counted when admitted. Tokens and cost are counted from each answer's usage (streams:
the final usage chunk); a request is admitted while every window still has budget, so a client can
overshoot a token or cost limit only by the requests it has in flight at that moment.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from multidict import istr

from gateway.config.limits import Price, RateLimit
from gateway.errors import AllProvidersFailed, RateLimited
from gateway.limits.windows import Check, Reading, State, StateBusy, StateUnavailable

log = logging.getLogger("localrouter.ratelimit")

#: the header suffix of each limit kind (OpenAI's names for requests and tokens)
HEADER_NAMES = {
    "requests": "requests",
    "total_tokens": "tokens",
    "input_tokens": "input-tokens",
    "output_tokens": "output-tokens",
    "cost_usd": "cost-usd",
}
_WARN_EVERY = 10.0


def key(client: str, limit: RateLimit) -> str:
    return f"rl:{client}:{limit.id}"


def duration(seconds: float) -> str:
    """OpenAI's reset format: ``250ms``, ``6s``, ``1m30s``, ``2h0m0s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms" if seconds > 0 else "0ms"
    return _whole_seconds(math.ceil(seconds))


@functools.lru_cache(maxsize=4096)  # a window's resets repeat the same few texts
def _whole_seconds(s: int) -> str:
    if s < 60:
        return f"{s}s"
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{s}s"
    return f"{m}m{s}s" if m else f"{s}s"


def _amount(value: float) -> str:
    whole = int(value)
    return str(whole) if whole == value else f"{value:.6f}".rstrip("0")


class _Plan:
    """What admitting one client under one set of limits takes, worked out once: the windows to check,
    and for each header kind the limits it reports (the tightest of several of one kind)."""

    __slots__ = ("checks", "headers", "counted")

    def __init__(self, client: str, limits: tuple[RateLimit, ...]) -> None:
        self.checks = [
            Check(key(client, lim), lim.window, lim.amount, 1.0 if lim.kind == "requests" else 0.0) for lim in limits
        ]
        by_kind: dict[str, list[int]] = {}
        for i, lim in enumerate(limits):
            by_kind.setdefault(lim.kind, []).append(i)
        # the limits counted from an answer's usage: (window key, window seconds, kind)
        self.counted = [
            (c.key, c.window, lim.kind) for c, lim in zip(self.checks, limits, strict=True) if lim.kind != "requests"
        ]
        self.headers = []
        for kind, indexes in by_kind.items():
            name = HEADER_NAMES[kind]
            # istr: a name aiohttp's header dict need not case-fold again on every answer
            self.headers.append(
                (
                    tuple(indexes),
                    istr(f"x-ratelimit-limit-{name}"),
                    istr(f"x-ratelimit-remaining-{name}"),
                    istr(f"x-ratelimit-reset-{name}"),
                    {i: _amount(limits[i].amount) for i in indexes},
                )
            )

    def headers_for(self, readings: list[Reading]) -> dict[str, str]:
        """x-ratelimit-{limit,remaining,reset}-<kind>."""
        checks = self.checks
        out: dict[str, str] = {}
        for indexes, limit_name, remaining_name, reset_name, limit_text in self.headers:
            i = indexes[0]
            if len(indexes) > 1:
                i = min(indexes, key=lambda j: checks[j].limit - readings[j].used)
            limit, reading = checks[i].limit, readings[i]
            used = reading.used
            out[limit_name] = limit_text[i]
            out[remaining_name] = _amount(limit - used) if used < limit else "0"
            out[reset_name] = duration(reading.reset)
        return out


def cost_usd(usage: Mapping[str, Any], price: Price | None) -> float | None:
    """USD for one answer's usage; None when the price is unknown. ``prompt_tokens`` counts every input
    token; those read from a cache (``cache_read_input_tokens``, Anthropic's, else OpenAI's
    ``prompt_tokens_details.cached_tokens``) or written to it (``cache_creation_input_tokens``) cost the
    price's cache prices when it has them."""
    if price is None:
        return None
    prompt, output_cost = _tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens") * price.output_per_1m
    if price.cache_read_per_1m is None and price.cache_write_per_1m is None:
        return (prompt * price.input_per_1m + output_cost) / 1_000_000
    read, written = _cache_tokens(usage, prompt)
    read_price = price.input_per_1m if price.cache_read_per_1m is None else price.cache_read_per_1m
    write_price = price.input_per_1m if price.cache_write_per_1m is None else price.cache_write_per_1m
    uncached = prompt - read - written
    return (uncached * price.input_per_1m + read * read_price + written * write_price + output_cost) / 1_000_000


def _cache_tokens(usage: Mapping[str, Any], prompt: int) -> tuple[int, int]:
    """(read from, written to) the prompt cache, of the ``prompt`` input tokens."""
    read = _tokens(usage, "cache_read_input_tokens")
    details = usage.get("prompt_tokens_details")
    if not read and isinstance(details, Mapping):
        read = _tokens(details, "cached_tokens")
    read = min(read, prompt)
    return read, min(_tokens(usage, "cache_creation_input_tokens"), prompt - read)


def _tokens(usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if type(value) is int and value > 0 else 0


class RateLimiter:
    def __init__(self, state: State, fail_closed: bool) -> None:
        self.state = state
        self.fail_closed = fail_closed
        self._warned = 0.0
        self._pending: set[asyncio.Task[None]] = set()
        self._plans: dict[tuple[str, tuple[RateLimit, ...]], _Plan] = {}
        self._unpriced_warned: set[str] = set()

    def _plan(self, client: str, limits: tuple[RateLimit, ...]) -> _Plan:
        plan = self._plans.get((client, limits))
        if plan is None:
            if len(self._plans) > 100_000:  # only ever grows with reloads that change limits
                self._plans.clear()
            plan = self._plans[(client, limits)] = _Plan(client, limits)
        return plan

    async def admit(self, client: str, limits: tuple[RateLimit, ...]) -> dict[str, str]:
        """The rate-limit headers of an admitted request; raises 429 (or 503 when failing closed)."""
        plan = self._plan(client, limits)
        checks = plan.checks
        try:
            admitted, readings = await self.state.admit(checks)
        except StateUnavailable as exc:
            return self._unavailable(exc)
        headers = plan.headers_for(readings)
        if not admitted:
            waits = [r.retry_after for r in readings if r.retry_after is not None]
            retry = max(1, math.ceil(max(waits))) if waits else 1
            over = ", ".join(
                f"{_amount(lim.amount)} {lim.kind.replace('_', ' ')} per {lim.per}"
                for lim, r in zip(limits, readings, strict=True)
                if r.retry_after is not None
            )
            raise RateLimited(
                f"Rate limit reached for this client ({over}). Retry in {retry}s.",
                code="rate_limit_exceeded",
                headers={**headers, "Retry-After": str(retry)},
            )
        return headers

    async def within(self, name: str, limits: tuple[RateLimit, ...]) -> float | None:
        """Like :meth:`admit`, for a budget that is not a client's (a pool's target): None when admitted
        (the request counted), else the seconds until every window has room; no headers, no 429."""
        plan = self._plan(name, limits)
        try:
            admitted, readings = await self.state.admit(plan.checks)
        except StateUnavailable as exc:
            self._unavailable(exc)
            return None
        if admitted:
            return None
        return max((r.retry_after for r in readings if r.retry_after is not None), default=1.0)

    def _unavailable(self, exc: StateUnavailable) -> dict[str, str]:
        busy = isinstance(exc, StateBusy)
        now = time.monotonic()
        if now - self._warned > _WARN_EVERY:
            self._warned = now
            if busy:
                log.warning("requests refused: rate limit state busy (%s; see state.max_connections)", exc)
            else:
                log.warning(
                    "rate limits not enforced: state backend unavailable (%s)%s",
                    exc,
                    "; refusing requests (state.fail_closed)" if self.fail_closed else "; failing open",
                )
        if busy:  # the backend is up: failing open here would overrun the budget
            raise AllProvidersFailed(
                "Rate limit state is busy; try again shortly.",
                code="rate_limit_state_busy",
                headers={"Retry-After": "1"},
            )
        if self.fail_closed:
            raise AllProvidersFailed(
                "Rate limit state is unavailable; try again shortly.",
                code="rate_limit_state_unavailable",
                headers={"Retry-After": "1"},
            )
        return {}

    def record(
        self, client: str, limits: tuple[RateLimit, ...], usage: Mapping[str, Any] | None, cost: float | None
    ) -> None:
        """Count an answer's tokens and ``cost`` (USD, None when unpriced: see :func:`cost_usd`) against
        the limits that count them (in the background)."""
        if not usage:
            return
        counted = self._plan(client, limits).counted
        if not counted:
            return
        prompt, completion = _tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens")
        amounts = {
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": _tokens(usage, "total_tokens") or prompt + completion,
        }
        items = []
        for window_key, window, kind in counted:
            if kind == "cost_usd":
                if cost is None:
                    if client not in self._unpriced_warned:  # once per client, not per request
                        self._unpriced_warned.add(client)
                        log.warning(
                            "client %s has a cost limit but was served by a model without a price: that "
                            "cost is not counted (set providers[].prices)",
                            client,
                        )
                elif cost > 0:
                    items.append((window_key, window, cost))
            elif amounts[kind] > 0:
                items.append((window_key, window, float(amounts[kind])))
        if items and not self.state.add_now(items):
            task = asyncio.get_running_loop().create_task(self._add(items))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _add(self, items: list[tuple[str, float, float]]) -> None:
        try:
            await self.state.add(items)
        except StateUnavailable as exc:
            log.warning("usage not counted: state backend unavailable (%s)", exc)

    async def drain(self) -> None:
        """Wait for usage still being counted (shutdown, tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
