"""``strategies:``: which models a client may use, its chains of fallbacks, ``localrouter/auto``, its limits."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config.cache import read_strategy_cache
from gateway.config.firewall import FirewallRule, read_rules
from gateway.config.limits import RateLimit, read_rate_limits
from gateway.config.mcp import SEPARATOR
from gateway.config.pools import PREFIX as POOL_PREFIX
from gateway.config.providers import ProviderConfig
from gateway.config.reader import Reader

AUTO_MODEL = "localrouter/auto"
GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class StrategyConfig:
    name: str
    allow: tuple[str, ...] = ()
    auto: tuple[str, ...] = ()
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rate_limits: tuple[RateLimit, ...] = ()
    # name or fnmatch glob -> model id, in the order written (globs are tried in this order)
    aliases: Mapping[str, str] = field(default_factory=dict)
    # globs over ``{server}__{name}`` and bare server names; None (no ``mcp`` key): no MCP server at all
    mcp: tuple[str, ...] | None = None
    # seconds a response cache entry of this strategy lasts; None: its requests never touch the cache
    cache_ttl: int | None = None
    # allow / ask / deny per model id or MCP item, first match wins (gateway.firewall)
    firewall: tuple[FirewallRule, ...] = ()


def check_model_ref(
    r: Reader, providers: Mapping[str, ProviderConfig], model: str, path: str, pools: frozenset[str] = frozenset()
) -> bool:
    """``pools``: the configured pool ids (``pool/NAME``), model ids as good as a provider's."""
    provider, sep, upstream = model.partition("/")
    if model in pools:
        return True
    if model.startswith(POOL_PREFIX) and POOL_PREFIX[:-1] not in providers:
        r.problem(path, f"unknown pool {upstream!r} in {model!r}")
    elif not sep or not provider or not upstream:
        r.problem(path, f"{model!r} is not a 'provider/model' id")
    elif provider not in providers:
        r.problem(path, f"unknown provider {provider!r} in {model!r}")
    elif (listed := providers[provider].models) is not None and upstream not in listed:
        r.problem(path, f"provider {provider!r} does not list model {upstream!r}")
    else:
        return True
    return False


def read_strategy(
    r: Reader,
    raw: Any,
    path: str,
    providers: Mapping[str, ProviderConfig],
    mcp_servers: frozenset[str] = frozenset(),
    pools: frozenset[str] = frozenset(),
    cache_ttl: int = 3600,
) -> StrategyConfig | None:
    """``mcp_servers``: the names of the configured MCP servers, which ``mcp`` globs must be able to match;
    ``pools``: the ids of the configured pools; ``cache_ttl``: the response cache's ``ttl``, for ``cache: true``."""
    m = r.mapping(
        raw,
        path,
        {
            "name": True,
            "allow": False,
            "auto": False,
            "fallbacks": False,
            "rate_limits": False,
            "aliases": False,
            "mcp": False,
            "cache": False,
            "firewall": False,
        },
    )
    if m is None:
        return None
    name = r.name(m["name"], f"{path}.name") if "name" in m else None
    allow = r.strings(m.get("allow"), f"{path}.allow")

    def ref(model: str, p: str) -> bool:
        return check_model_ref(r, providers, model, p, pools)

    auto = r.strings(m.get("auto"), f"{path}.auto", ref)
    fallbacks: dict[str, tuple[str, ...]] = {}
    raw_fb = m.get("fallbacks") or {}
    if not isinstance(raw_fb, dict):
        r.problem(f"{path}.fallbacks", "expected a mapping of model id to a list of model ids")
    else:
        for model, chain in raw_fb.items():
            if ref(str(model), f"{path}.fallbacks.{model}"):
                fallbacks[str(model)] = r.strings(chain, f"{path}.fallbacks.{model}", ref)
    limits = read_rate_limits(r, m.get("rate_limits"), f"{path}.rate_limits")
    aliases = _read_aliases(r, m.get("aliases"), f"{path}.aliases", providers, bool(auto), pools)
    mcp = None
    if "mcp" in m:
        mcp = r.strings(m["mcp"], f"{path}.mcp", lambda glob, p: _check_mcp_glob(r, mcp_servers, glob, p))
    cache = read_strategy_cache(r, m.get("cache"), f"{path}.cache", cache_ttl)
    rules = read_rules(r, m.get("firewall"), f"{path}.firewall")
    return StrategyConfig(name, allow, auto, fallbacks, limits, aliases, mcp, cache, rules) if name else None


def _check_mcp_glob(r: Reader, servers: frozenset[str], glob: str, path: str) -> bool:
    """A glob whose server part (before ``__``, or all of it) can match no configured server is a typo or a
    server since removed: refused, as a model id naming an unknown provider is."""
    server_part, sep, _ = glob.partition(SEPARATOR)
    if not sep and GLOB_CHARS.intersection(glob):
        return True  # ``*`` or ``*read*``: may match any server's items
    if not any(fnmatch.fnmatchcase(server, server_part) for server in servers):
        r.problem(path, f"{glob!r} matches no server in mcp_servers")
        return False
    return True


def _read_aliases(
    r: Reader,
    raw: Any,
    path: str,
    providers: Mapping[str, ProviderConfig],
    has_auto: bool,
    pools: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """``{name or glob: model id}``, each target checked as ``auto`` entries are, or ``localrouter/auto``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        r.problem(path, "expected a mapping of model name (or glob) to a model id")
        return {}
    out: dict[str, str] = {}
    for key, value in raw.items():
        p = f"{path}.{key}"
        target = r.string(value, p)
        if not _check_alias_name(r, providers, key, p) or target is None:
            continue
        if target == AUTO_MODEL and not has_auto:
            r.problem(p, f"the target is {AUTO_MODEL}, but this strategy has no auto chain")
        elif target == AUTO_MODEL or check_model_ref(r, providers, target, p, pools):
            out[key] = target
    return out


def _check_alias_name(r: Reader, providers: Mapping[str, ProviderConfig], name: Any, path: str) -> bool:
    """A name in a configured provider's ids (or ``localrouter/``) is refused: it would shadow a real model
    id, or never apply, since real ids always mean themselves."""
    if not isinstance(name, str) or not name:
        r.problem(path, "an alias name must be a non-empty string")
        return False
    prefix, sep, _ = name.partition("/")
    if sep and (prefix in providers or prefix in (AUTO_MODEL.partition("/")[0], POOL_PREFIX[:-1])):
        r.problem(path, f"ambiguous: {name!r} is among the model ids of {prefix!r}; name the alias without it")
        return False
    return True
