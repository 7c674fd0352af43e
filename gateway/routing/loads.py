"""What pools know of their targets, and what the fallback loop does more for a pool's target.

Per target id, kept across reloads as the breakers are (:class:`Loads`): its requests in flight (a stream
until it ends) and its moving average of time to first byte. A pool's target carries its :class:`Member`:
a ``usage`` pool's budget is asked before each attempt, and every attempt counts in the numbers above.
Apart from the pools themselves (gateway.routing.pools), so that a Target (gateway.routing.router) can
carry a Member without the router knowing pools.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from gateway.config import RateLimit
from gateway.routing.breaker import Breakers
from providers.base import Provider, ProviderError

T = TypeVar("T")
X = TypeVar("X")  # the target an attempt is for (a gateway.routing.router.Target)

#: weight of the newest time to first byte in a target's moving average
LATENCY_WEIGHT = 0.3


class OverBudget(ProviderError):
    """A ``usage`` pool's target has spent its budget for now (it was not called)."""

    kind = "rate_limited"

    def __init__(self, seconds: float) -> None:
        super().__init__(f"its pool budget is spent ({seconds:.0f}s until it has room)", retryable=False)
        self.retry_after = seconds


class Budgets(Protocol):
    """Per-minute windows by name (the rate limiter's, in memory or in Redis)."""

    async def within(self, name: str, limits: tuple[RateLimit, ...]) -> float | None:
        """Count a request if every window has room (None), else the seconds until one would."""

    def record(self, name: str, limits: tuple[RateLimit, ...], usage: Mapping[str, Any] | None, cost: None) -> None:
        """Count an answer's tokens."""


class Loads:
    """What pools know of each target id: its requests in flight and its moving average of time to first
    byte; with the breakers (targets cooling down) and the budgets that ``usage`` pools ask."""

    def __init__(self, breakers: Breakers, budgets: Budgets) -> None:
        self.breakers = breakers
        self.budgets = budgets
        self.in_flight: dict[str, int] = {}
        self.latency: dict[str, float] = {}

    def began(self, target: str) -> None:
        self.in_flight[target] = self.in_flight.get(target, 0) + 1

    def ended(self, target: str) -> None:
        self.in_flight[target] -= 1

    def answered(self, target: str, seconds: float) -> None:
        last = self.latency.get(target)
        self.latency[target] = seconds if last is None else last + LATENCY_WEIGHT * (seconds - last)


@dataclass(frozen=True, slots=True, eq=False)
class Member:
    """A target as one pool's: carried by the Target the pool puts in its chains."""

    pool: str  # the pool's name
    target: str  # the target's id
    loads: Loads
    limits: tuple[RateLimit, ...] = ()  # its budget in a ``usage`` pool

    @property
    def budget(self) -> str:
        """Its windows' name: a pool's own budget for it (``:`` is in no client's name)."""
        return f"pool:{self.pool}:{self.target}"

    async def admit(self) -> OverBudget | None:
        """Before an attempt: None if it may go (and then it is counted), else why not."""
        if not self.limits:
            return None
        wait = await self.loads.budgets.within(self.budget, self.limits)
        return None if wait is None else OverBudget(wait)

    async def attempt(self, call: Callable[[Provider, X], Awaitable[T]], provider: Provider, target: X) -> T:
        """``call`` counted in flight (until :meth:`ended`, once it answered) and, answered, timed."""
        self.loads.began(self.target)
        began = time.perf_counter()
        try:
            result = await call(provider, target)
        except BaseException:
            self.loads.ended(self.target)
            raise
        self.loads.answered(self.target, time.perf_counter() - began)
        return result

    def ended(self) -> None:
        """The answer of an attempt that succeeded is over (a stream's at its end)."""
        self.loads.ended(self.target)

    def used(self, usage: Mapping[str, Any]) -> None:
        """An answer's usage, counted in the target's token budget if it has one."""
        if self.limits:
            self.loads.budgets.record(self.budget, self.limits, usage, None)
