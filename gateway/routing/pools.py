"""Pools: one model id (``pool/NAME``) over several targets, one of them picked per request by the pool's rule.

A pool becomes a chain like any other (:meth:`Pool.order`: the pick first, then the rest of the pool in its
order), so the one fallback loop runs it: it skips targets cooling down, and moves on from a failed one.
What the loop does more for a pool's target its :class:`Member` says: a ``usage`` pool's budget is asked
before each attempt, and every attempt counts in the target's requests in flight (a stream until it ends)
and, when it answers, in its moving average of time to first byte. Those numbers live in :class:`Loads`,
per target id, kept across reloads as the breakers are.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from gateway.config import PoolConfig, RateLimit
from gateway.routing.breaker import Breakers
from gateway.routing.router import Target
from providers.base import Provider, ProviderError

T = TypeVar("T")

#: weight of the newest time to first byte in a target's moving average
LATENCY_WEIGHT = 0.3
#: share of a ``latency`` pool's picks that go to a random target, so that a slow one is measured again
LATENCY_EXPLORE = 0.05


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
    """A target as one pool's: carried by the :class:`Target` the pool puts in its chains."""

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

    async def attempt(self, call: Callable[[Provider, Target], Awaitable[T]], provider: Provider, target: Target) -> T:
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


class Pool:
    """A pool compiled for one runtime: its targets (each carrying its :class:`Member`) and its rule."""

    def __init__(self, config: PoolConfig, loads: Loads) -> None:
        self.id = config.id
        self.name = config.name
        self.targets = tuple(_member(config, target_id, loads) for target_id in config.targets)
        self._loads = loads
        self._pick = _PICKS[config.balance]
        self._turn = 0
        self._weights = tuple(config.weights.get(t.id, 1.0) for t in self.targets)
        self._current = [0.0] * len(self.targets)  # smooth weighted round robin's running scores

    def order(self) -> tuple[Target, ...]:
        """This request's chain: the target the rule picks among those not cooling down, then the others
        in the pool's order (the loop skips those cooling down)."""
        cooling = self._loads.breakers.cooling
        ready = [i for i, target in enumerate(self.targets) if not cooling(target.id)]
        if not ready:
            return self.targets
        first = self._pick(self, ready)
        if first == 0:
            return self.targets
        return (self.targets[first], *self.targets[:first], *self.targets[first + 1 :])

    def _next_turn(self, ready: list[int]) -> int:
        turn, self._turn = self._turn, self._turn + 1
        return ready[turn % len(ready)]

    def _round_robin(self, ready: list[int]) -> int:
        return self._next_turn(ready)

    def _weighted(self, ready: list[int]) -> int:
        """nginx's smooth weighted round robin: exact shares, the heavy target's turns spread out."""
        current, weights = self._current, self._weights
        for i in ready:
            current[i] += weights[i]
        best = max(ready, key=current.__getitem__)
        current[best] -= sum(weights[i] for i in ready)
        return best

    def _least_busy(self, ready: list[int]) -> int:
        """Fewest requests in flight; among equals, turns (else an idle pool would send all to its first)."""
        start = self._next_turn(ready)
        busy = self._loads.in_flight
        rotated = [i for i in ready if i >= start] + [i for i in ready if i < start]
        return min(rotated, key=lambda i: busy.get(self.targets[i].id, 0))

    def _latency(self, ready: list[int]) -> int:
        """Lowest moving average of time to first byte; a target not measured yet first."""
        if random.random() < LATENCY_EXPLORE:
            return random.choice(ready)
        averages = self._loads.latency
        return min(ready, key=lambda i: averages.get(self.targets[i].id, 0.0))


_PICKS: dict[str, Callable[[Pool, list[int]], int]] = {
    "round_robin": Pool._round_robin,
    "weighted": Pool._weighted,
    "least_busy": Pool._least_busy,
    "latency": Pool._latency,
    "usage": Pool._round_robin,  # turns; a target whose budget is spent is skipped by the loop
}


def _member(config: PoolConfig, target_id: str, loads: Loads) -> Target:
    provider, _, model = target_id.partition("/")
    return Target(target_id, provider, model, Member(config.name, target_id, loads, config.limits.get(target_id, ())))


def compile_pools(configs: Iterable[PoolConfig], loads: Loads) -> dict[str, Pool]:
    """Each pool by its model id."""
    return {config.id: Pool(config, loads) for config in configs}
