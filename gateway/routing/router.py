"""From a requested model id to the chain of targets that may serve it, under a client's strategy."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway.config import AUTO_MODEL, ClientConfig, Config, FirewallRule, StrategyConfig
from gateway.config.limits import RateLimit
from gateway.errors import ModelNotFound, PermissionDenied
from gateway.routing.aliases import Aliases
from gateway.routing.catalog import Catalog

MAX_SUGGESTIONS = 3
MAX_SUGGESTED_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Target:
    """One place a request may go: ``id`` is ``provider/model``, ``model`` the upstream's own name."""

    id: str
    provider: str
    model: str

    @classmethod
    def parse(cls, model_id: str) -> Target | None:
        provider, sep, model = model_id.partition("/")
        return cls(model_id, provider, model) if sep and provider and model else None


@dataclass(frozen=True, slots=True)
class Policy:
    """A strategy compiled once: its allow globs as one regex, its chains as targets, its aliases."""

    name: str
    allow: re.Pattern[str]
    auto: tuple[Target, ...]
    fallbacks: Mapping[str, tuple[Target, ...]]
    limits: tuple[RateLimit, ...] = ()
    aliases: Aliases = field(default_factory=Aliases)
    firewall: tuple[FirewallRule, ...] = ()
    screened: bool = False  # the firewall looks at its requests (rules, or secrets not off): one attribute check

    @classmethod
    def compile(cls, s: StrategyConfig, providers: Iterable[str] = (), secrets: str = "off") -> Policy:
        pattern = "|".join(f"(?:{fnmatch.translate(glob)})" for glob in s.allow) or r"(?!)"
        return cls(
            s.name,
            re.compile(pattern),
            tuple(t for t in map(Target.parse, s.auto) if t),
            {m: tuple(t for t in map(Target.parse, chain) if t) for m, chain in s.fallbacks.items()},
            s.rate_limits,
            Aliases.compile(s.aliases, providers),
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


class Router:
    def __init__(self, config: Config, catalog: Catalog) -> None:
        self.providers = tuple(p.name for p in config.providers)
        self.policies = {s.name: Policy.compile(s, self.providers, config.firewall.secrets) for s in config.strategies}
        self.catalog = catalog

    async def chain(self, policy: Policy, model_id: str) -> tuple[Target, ...]:
        """The targets for ``model_id`` (or the model its alias names), in order; 404 if nothing serves it,
        403 if not allowed."""
        resolved = policy.aliases.resolve(model_id)
        if resolved == AUTO_MODEL:
            if not policy.auto:
                raise ModelNotFound(f"The model `{model_id}` is not configured for this client.", param="model")
            return policy.auto
        target = Target.parse(resolved)
        if target is None or not await self.serves(target):
            raise ModelNotFound(await self._not_found(policy, model_id, resolved, target), param="model")
        if not policy.allows(resolved):
            raise PermissionDenied(f"This client may not use the model {_named(model_id, resolved)}.", param="model")
        return (target, *policy.fallbacks.get(resolved, ()))

    async def _not_found(self, policy: Policy, model_id: str, resolved: str, target: Target | None) -> str:
        """Why ``model_id`` is unknown, and the ids this client may use that it might mean."""
        message = f"The model {_named(model_id, resolved)} does not exist"
        if target is None:
            message += ": model ids are `provider/model`"
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
        """(id, owner, created) of every model the policy allows, ``localrouter/auto`` first, then the exact
        aliases whose target it allows (a glob names no model to list)."""
        out: list[tuple[str, str, int | None]] = [(AUTO_MODEL, "localrouter", None)] if policy.auto else []
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
        target = Target.parse(model_id)
        if target is None or target.provider not in self.providers or not policy.allows(model_id):
            return None
        info = (await self.catalog.models(target.provider) or {}).get(target.model)
        return None if info is None else (model_id, target.provider, info.created)


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
