"""A strategy's firewall rules applied to what a request would reach: a model (by the id asked for, the id
its alias stands for, and each target of its chain) or an MCP item (``{server}__{name}``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.config import POOL_PREFIX, FirewallRule
from gateway.routing.router import Target

STRICTNESS = {"allow": 0, "ask": 1, "deny": 2}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a rule said: ``action`` (allow, ask, deny) about ``what`` (the name it matched), by ``rule`` (its
    ``match`` glob)."""

    action: str
    what: str
    rule: str


def first(rules: Sequence[FirewallRule], name: str) -> Verdict | None:
    """The first rule matching ``name`` (None: no rule speaks of it, so it is allowed)."""
    for rule in rules:
        if rule.matches(name):
            return Verdict(rule.action, name, rule.match)
    return None


def _stricter(a: Verdict | None, b: Verdict | None) -> Verdict | None:
    if a is None or (b is not None and STRICTNESS[b.action] > STRICTNESS[a.action]):
        return b
    return a


def _judged(rules: Sequence[FirewallRule], target: Target) -> Verdict | None:
    """A target of a chain, by its own id and, a pool's target, by the pool's id too (the stricter holding):
    a pool in a chain (``fallbacks``, ``auto``) is no way round a rule on the pool."""
    verdict = first(rules, target.id)
    if target.member is not None:
        verdict = _stricter(verdict, first(rules, POOL_PREFIX + target.member.pool))
    return verdict


def _covered(judged: Verdict, verdict: Verdict | None) -> bool:
    """Whether the approval the request waits for covers ``judged`` (the rest of a pool asked for by its id)."""
    return verdict is not None and verdict.action == judged.action == "ask" and verdict.what == judged.what


def _free(judged: Verdict | None) -> bool:
    return judged is None or judged.action == "allow"


def for_model(
    rules: Sequence[FirewallRule], requested: str, resolved: str, chain: tuple[Target, ...]
) -> tuple[Verdict | None, tuple[Target, ...]]:
    """The verdict on a model request and the chain it may use. The names asked for and resolved (an
    alias's target, ``localrouter/auto``) are judged, the stricter verdict holding, so an alias cannot get
    round a rule. Each target of the chain is judged too (a pool's by the pool's id as well): a denied one
    is left out (none left: denied); the first one tried may ask, unless it is a pool's target and another
    target of that pool may serve unasked (a pool is one model: the request is held only when every target
    would ask); a fallback that would need a person's yes is left out, since a fallback never waits, unless
    the yes the request waits for covers it (the rest of a pool asked for by its id)."""
    verdict: Verdict | None = None
    for name in dict.fromkeys((requested, resolved)):
        verdict = _stricter(verdict, first(rules, name))
    if verdict is not None and verdict.action == "deny":
        return verdict, ()
    kept: list[Target] = []
    denied: Verdict | None = None
    judged_chain = [(target, _judged(rules, target)) for target in chain]
    # the pools with a target that may serve unasked: their targets that would ask are left out
    free = {t.member.pool for t, judged in judged_chain if t.member is not None and _free(judged)}
    for target, judged in judged_chain:
        if judged is None or judged.action == "allow" or _covered(judged, verdict):
            kept.append(target)
        elif judged.action == "deny":
            denied = denied or judged
        elif not kept and (target.member is None or target.member.pool not in free):
            kept.append(target)
            verdict = _stricter(verdict, judged)
    if not kept:
        return denied, ()
    return verdict, tuple(kept)
