"""Pools: one model id (``pool/NAME``) over several targets, one of them picked per request by the pool's rule.

A pool becomes a chain like any other (:meth:`Pool.order`: the pick first, then the rest of the pool in its
order), so the one fallback loop runs it: it skips targets cooling down, and moves on from a failed one.
What the loop does more for a pool's target its Member says (gateway.routing.loads, with the numbers the
rules read: requests in flight, time to first byte).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from gateway.config import PoolConfig
from gateway.routing.loads import Loads, Member
from gateway.routing.router import Target

#: share of a ``latency`` pool's picks that go to a random target, so that a slow one is measured again
LATENCY_EXPLORE = 0.05


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
