"""From a requested model id to the chain of targets that may serve it, under a client's strategy."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gateway.config import AUTO_MODEL, POOL_PREFIX, ClientConfig, Config, FirewallRule, StrategyConfig
from gateway.config.limits import RateLimit
from gateway.errors import ModelNotFound, PermissionDenied
from gateway.routing.aliases import Aliases
from gateway.routing.catalog import Catalog
from gateway.routing.loads import Member

MAX_SUGGESTIONS = 3
MAX_SUGGESTED_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Target:
    """One place a request may go: ``id`` is ``provider/model``, ``model`` the upstream's own name."""

    id: str
    provider: str
    model: str
    member: Member | None = field(default=None, compare=False)  # as a pool's target: what trying it counts

    @classmethod
    def parse(cls, model_id: str) -> Target | None:
        provider, sep, model = model_id.partition("/")
        return cls(model_id, provider, model) if sep and provider and model else None


class Pool(Protocol):
    """A pool as chains see it (gateway.routing.pools builds them of this module's targets)."""

    @property
    def targets(self) -> tuple[Target, ...]: ...

    def order(self) -> tuple[Target, ...]:
        """This request's chain of the pool's targets."""


@dataclass(frozen=True, slots=True)
class Policy:
    """A strategy compiled once: its allow globs as one regex, its chains as targets, its aliases."""

    name: str
    allow: re.Pattern[str]
    auto: tuple[Target, ...]
    fallbacks: Mapping[str, tuple[Target, ...]]
    limits: tuple[RateLimit, ...] = ()
    aliases: Aliases = field(default_factory=Aliases)
    # the chains (by model id, ``localrouter/auto`` too) that name a pool, ordered anew for each request;
    # ``auto`` and ``fallbacks`` hold them too, with each pool's targets in the pool's order
    pooled: Mapping[str, tuple[Target | Pool, ...]] = field(default_factory=dict)
    cache_ttl: int | None = None  # its response cache entries' lifetime; None: no cache (gateway.cache)
    firewall: tuple[FirewallRule, ...] = ()
    screened: bool = False  # the firewall looks at its requests (rules, or secrets not off): one attribute check

    @classmethod
    def compile(
        cls, s: StrategyConfig, providers: Iterable[str] = (), pools: Mapping[str, Pool] = {}, secrets: str = "off"
    ) -> Policy:
        pattern = "|".join(f"(?:{fnmatch.translate(glob)})" for glob in s.allow) or r"(?!)"
        chains = {AUTO_MODEL: _links(s.auto, pools), **{m: _links(c, pools) for m, c in s.fallbacks.items()}}
        pooled = {m: links for m, links in chains.items() if any(not isinstance(t, Target) for t in links)}
        flat = {m: tuple(t for link in links for t in _targets(link)) for m, links in chains.items()}
        return cls(
            s.name,
            re.compile(pattern),
            flat.pop(AUTO_MODEL),
            flat,
            s.rate_limits,
            Aliases.compile(s.aliases, (*providers, POOL_PREFIX[:-1]) if pools else providers),
            pooled,
            s.cache_ttl,
            s.firewall,
            bool(s.firewall) or secrets != "off",
        )

    def allows(self, model_id: str) -> bool:
        return self.allow.match(model_id) is not None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: set by auth, read by everything after it."""

    client: ClientConfig
    policy: Policy


def _links(model_ids: Iterable[str], pools: Mapping[str, Pool]) -> tuple[Target | Pool, ...]:
    return tuple(link for link in (pools.get(m) or Target.parse(m) for m in model_ids) if link)


def _targets(link: Target | Pool) -> tuple[Target, ...]:
    return (link,) if isinstance(link, Target) else link.targets


class Router:
    def __init__(self, config: Config, catalog: Catalog, pools: Mapping[str, Pool] = {}) -> None:
        self.providers = tuple(p.name for p in config.providers)
        self.pools = pools  # by model id
        secrets = config.firewall.secrets
        self.policies = {s.name: Policy.compile(s, self.providers, pools, secrets) for s in config.strategies}
        self.catalog = catalog

    async def chain(self, policy: Policy, model_id: str) -> tuple[Target, ...]:
        """The targets for ``model_id`` (or the model its alias names), in order; 404 if nothing serves it,
        403 if not allowed."""
        resolved = policy.aliases.resolve(model_id)
        if resolved == AUTO_MODEL:
            if not policy.auto:
                raise ModelNotFound(f"The model `{model_id}` is not configured for this client.", param="model")
            return policy.auto if AUTO_MODEL not in policy.pooled else _expand(policy.pooled[AUTO_MODEL])
        pool = self.pools.get(resolved)
        if pool is not None:
            if not policy.allows(resolved):
                raise PermissionDenied(
                    f"This client may not use the model {_named(model_id, resolved)}.", param="model"
                )
            return _expand((pool, *policy.pooled.get(resolved, policy.fallbacks.get(resolved, ()))))
        target = Target.parse(resolved)
        if target is None or not await self.serves(target):
            raise ModelNotFound(await self._not_found(policy, model_id, resolved, target), param="model")
        if not policy.allows(resolved):
            raise PermissionDenied(f"This client may not use the model {_named(model_id, resolved)}.", param="model")
        links = policy.pooled.get(resolved) if policy.pooled else None
        return (target, *policy.fallbacks.get(resolved, ())) if links is None else _expand((target, *links))

    async def _not_found(self, policy: Policy, model_id: str, resolved: str, target: Target | None) -> str:
        """Why ``model_id`` is unknown, and the ids this client may use that it might mean."""
        message = f"The model {_named(model_id, resolved)} does not exist"
        if target is None:
            message += ": model ids are `provider/model`"
        elif target.provider == POOL_PREFIX[:-1] and target.provider not in self.providers:
            message += f": no pool `{target.model}` is configured"
        elif target.provider not in self.providers:
            message += f": no provider `{target.provider}` is configured"
        visible = [m for m, _, _ in await self.visible_models(policy)]
        near = _near(model_id, None if resolved != model_id else target, visible)
        if near:
            return f"{message}. Did you mean {', '.join(f'`{m}`' for m in near)}?"
        return f"{message}. GET /v1/models lists the models this client may use."

    async def serves(self, target: Target) -> bool:
        if target.provider not in self.providers:
            return False
        models = await self.catalog.models(target.provider)
        return models is None or target.model in models

    async def visible_models(self, policy: Policy) -> list[tuple[str, str, int | None]]:
        """(id, owner, created) of every model the policy allows, ``localrouter/auto`` first, then its pools,
        then the exact aliases whose target it allows (a glob names no model to list)."""
        out: list[tuple[str, str, int | None]] = [(AUTO_MODEL, "localrouter", None)] if policy.auto else []
        out += [(pool_id, "localrouter", None) for pool_id in self.pools if policy.allows(pool_id)]
        for name, target in policy.aliases.exact.items():
            found = await self._visible(policy, target)
            if found is not None:
                out.append((name, *found[1:]))
        for provider in self.providers:
            for info in (await self.catalog.models(provider) or {}).values():
                model_id = f"{provider}/{info.id}"
                if policy.allows(model_id):
                    out.append((model_id, provider, info.created))
        return out

    async def visible_model(self, policy: Policy, model_id: str) -> tuple[str, str, int | None] | None:
        """(id, owner, created) of ``model_id`` (or of the model its alias names, under its own name) if the
        client may use it, else None."""
        found = await self._visible(policy, policy.aliases.resolve(model_id))
        return None if found is None else (model_id, *found[1:])

    async def _visible(self, policy: Policy, model_id: str) -> tuple[str, str, int | None] | None:
        if model_id == AUTO_MODEL:
            return (AUTO_MODEL, "localrouter", None) if policy.auto else None
        if model_id in self.pools:
            return (model_id, "localrouter", None) if policy.allows(model_id) else None
        target = Target.parse(model_id)
        if target is None or target.provider not in self.providers or not policy.allows(model_id):
            return None
        info = (await self.catalog.models(target.provider) or {}).get(target.model)
        return None if info is None else (model_id, target.provider, info.created)


def same_pool(served: Target, asked: Target) -> bool:
    """``served`` and ``asked`` (a chain's first target, the model asked for) are targets of one pool: when a
    pool is asked for, any of its targets is that model (its pick may not serve the endpoint, another may)."""
    return served.member is not None and asked.member is not None and served.member.pool == asked.member.pool


def _expand(links: Iterable[Target | Pool]) -> tuple[Target, ...]:
    """A chain that names pools, as targets: each pool in its order for this request (its rule picks now,
    even when a target before it will serve); a target met twice is tried once."""
    out: dict[Target, None] = {}
    for link in links:
        for target in (link,) if isinstance(link, Target) else link.order():
            out.setdefault(target, None)
    return tuple(out)


def _named(model_id: str, resolved: str) -> str:
    """``model_id`` quoted for a message, saying which model it is an alias of."""
    return f"`{model_id}`" if model_id == resolved else f"`{model_id}` (an alias of `{resolved}`)"


def _near(model_id: str, target: Target | None, visible: list[str]) -> list[str]:
    """Ids from ``visible`` for the same upstream model under another provider, or spelled alike."""
    if len(model_id) > MAX_SUGGESTED_LENGTH:  # matching is quadratic in the length: no work for junk
        return []
    name = model_id if target is None else target.model
    by_name: dict[str, list[str]] = {}
    for visible_id in visible:
        by_name.setdefault(visible_id.partition("/")[2] or visible_id, []).append(visible_id)  # an alias: itself
    found = list(by_name.get(name, ()))
    for close in difflib.get_close_matches(name, by_name, n=MAX_SUGGESTIONS, cutoff=0.6):
        found.extend(by_name[close])
    found.extend(difflib.get_close_matches(model_id, visible, n=MAX_SUGGESTIONS, cutoff=0.6))
    return list(dict.fromkeys(found))[:MAX_SUGGESTIONS]
