"""``pools:``: one model spread over several deployments, named ``pool/NAME`` wherever a model id goes.

Each pool lists its targets (``provider/model`` ids) and how a request picks one (``balance``); ``weights``
belong to a ``weighted`` pool only, ``limits`` (per-minute budgets per target) to a ``usage`` pool only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config.limits import RateLimit
from gateway.config.reader import Reader

PREFIX = "pool/"  # a pool's model id is PREFIX + its name
BALANCES = ("round_robin", "weighted", "least_busy", "latency", "usage")
#: a target's budget keys in a ``usage`` pool -> the limit kind each sets, per minute
BUDGET_KEYS = {"requests_per_minute": "requests", "tokens_per_minute": "total_tokens"}


@dataclass(frozen=True)
class PoolConfig:
    name: str
    targets: tuple[str, ...]
    balance: str = "round_robin"
    weights: Mapping[str, float] = field(default_factory=dict)  # target id -> weight (absent: 1)
    limits: Mapping[str, tuple[RateLimit, ...]] = field(default_factory=dict)  # target id -> its budgets

    @property
    def id(self) -> str:
        return PREFIX + self.name


def read_pool(r: Reader, raw: Any, path: str, check_target: Callable[[str, str], bool]) -> PoolConfig | None:
    """``check_target(model id, path)``: the target names a configured provider's model (else a problem)."""
    m = r.mapping(raw, path, {"name": True, "targets": True, "balance": False, "weights": False, "limits": False})
    if m is None:
        return None
    name = r.name(m["name"], f"{path}.name") if "name" in m else None
    targets = _read_targets(r, m.get("targets"), f"{path}.targets", check_target)
    balance = r.string(m.get("balance", "round_robin"), f"{path}.balance")
    if balance is not None and balance not in BALANCES:
        r.problem(f"{path}.balance", f"expected one of {', '.join(BALANCES)}")
        balance = None
    weights = _read_weights(r, m, path, balance, targets)
    limits = _read_limits(r, m, path, balance, targets)
    if not name or balance is None or not targets:
        return None
    return PoolConfig(name, targets, balance, weights, limits)


def _read_targets(r: Reader, raw: Any, path: str, check: Callable[[str, str], bool]) -> tuple[str, ...]:
    if raw is not None and not isinstance(raw, list):
        r.problem(path, "expected a list of provider/model ids")
        return ()
    if not raw:
        r.problem(path, "a pool needs at least one target")
        return ()
    targets = r.strings(raw, path, lambda target, p: _target_ok(r, target, p, check))
    for i, target in enumerate(targets):
        if target in targets[:i]:
            r.problem(path, f"{target!r} is listed twice")
    return tuple(dict.fromkeys(targets))


def _target_ok(r: Reader, target: str, path: str, check: Callable[[str, str], bool]) -> bool:
    if target.startswith(PREFIX):
        r.problem(path, f"{target!r}: a pool's targets are provider/model ids, not other pools")
        return False
    return check(target, path)


def _only_for(r: Reader, m: Mapping[str, Any], key: str, path: str, balance: str | None, wanted: str) -> bool:
    """Whether ``key`` is there to be read: a problem if it is, but the pool's balance is not ``wanted``."""
    if key not in m:
        return False
    if balance is not None and balance != wanted:
        r.problem(f"{path}.{key}", f"only for balance: {wanted} (this pool's is {balance})")
        return False
    return True


def _entries(r: Reader, raw: Any, path: str, targets: tuple[str, ...]) -> list[tuple[str, Any, str]]:
    """The ``(target, value, path)`` of a mapping keyed by the pool's targets; a key outside the pool is a problem."""
    if not isinstance(raw, dict):
        r.problem(path, "expected a mapping of the pool's target ids")
        return []
    out = []
    for key, value in raw.items():
        if key not in targets:
            r.problem(f"{path}.{key}", "not one of this pool's targets")
        else:
            out.append((key, value, f"{path}.{key}"))
    return out


def _read_weights(
    r: Reader, m: Mapping[str, Any], path: str, balance: str | None, targets: tuple[str, ...]
) -> dict[str, float]:
    if not _only_for(r, m, "weights", path, balance, "weighted"):
        return {}
    weights = {}
    for target, value, p in _entries(r, m["weights"], f"{path}.weights", targets):
        weight = r.number(value, p)
        if weight is not None:
            weights[target] = float(weight)
    return weights


def _read_limits(
    r: Reader, m: Mapping[str, Any], path: str, balance: str | None, targets: tuple[str, ...]
) -> dict[str, tuple[RateLimit, ...]]:
    if not _only_for(r, m, "limits", path, balance, "usage"):
        if balance == "usage" and "limits" not in m:
            r.problem(f"{path}.limits", "required for balance: usage (a per-minute budget for some target)")
        return {}
    limits = {}
    for target, value, p in _entries(r, m["limits"], f"{path}.limits", targets):
        budget = r.mapping(value, p, dict.fromkeys(BUDGET_KEYS, False))
        if budget is None:
            continue
        if not budget:
            r.problem(p, f"expected {' and/or '.join(BUDGET_KEYS)}")
        found = [(BUDGET_KEYS[k], r.number(budget[k], f"{p}.{k}", integer=True)) for k in BUDGET_KEYS if k in budget]
        if found and all(amount is not None for _, amount in found):
            limits[target] = tuple(RateLimit(kind, float(amount), "minute") for kind, amount in found)
    return limits


def check_names(r: Reader, pools: tuple[PoolConfig, ...], providers: Mapping[str, Any]) -> None:
    """Pool ids are ``pool/NAME``: a provider named ``pool`` would have its model ids taken by them."""
    if pools and PREFIX[:-1] in providers:
        r.problem("pools", f"a provider is named {PREFIX[:-1]!r}: pool ids ({PREFIX}NAME) would shadow its models")
