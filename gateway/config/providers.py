"""Providers in the config: their types, timeouts, retries, cooldown, prices and type-specific keys.

The provider types are not listed here: each wire format declares itself in its adapter's module
(``providers.registry`` gathers them), and whoever parses a config passes them in as ``types``
(:class:`ProviderType` is all this reader needs of one). Injected, because the config sits below the
providers (they import :class:`ProviderConfig`) and cannot import them; and a list kept here as well
would be a second place for every new wire format to touch. What is read stays the same: a type's
own keys are checked, with their YAML paths, while the file is loaded.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol, Self
from urllib.parse import urlsplit, urlunsplit

from gateway.config.limits import Price, read_prices
from gateway.config.reader import Reader, Secret

ENDPOINTS = ("chat", "completions", "embeddings", "responses")
#: what a provider serves unless its ``endpoints`` say: not ``responses`` (OpenAI's Responses API, which
#: most OpenAI-compatible servers lack; a Responses request goes to them as a chat completion instead)
DEFAULT_ENDPOINTS = frozenset(ENDPOINTS) - {"responses"}
#: connections to one provider at most, unless ``server.upstream_connections`` or the provider says otherwise
MAX_CONNECTIONS = 1024


@dataclass(frozen=True)
class Timeouts:
    """Seconds: to connect, to the response headers, between stream chunks, for the whole answer."""

    connect: float = 10.0
    first_byte: float = 120.0
    idle: float = 60.0
    total: float = 600.0


@dataclass(frozen=True)
class Cooldown:
    """Skip a target for ``seconds`` after ``failures`` failed attempts in a row (0 failures: never)."""

    failures: int = 5
    seconds: float = 30.0


@dataclass(frozen=True)
class Resilience:
    """Per provider; ``server.defaults`` sets them for every provider, key by key."""

    timeouts: Timeouts = Timeouts()
    retries: int = 0
    cooldown: Cooldown = Cooldown()


@dataclass(frozen=True)
class TypeOptions(abc.ABC):
    """The keys only one provider type takes. A wire format subclasses it: the subclass's fields are
    its YAML keys, and :meth:`read` reads them (and reports their problems) from a provider's mapping."""

    @classmethod
    def keys(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))

    @classmethod
    @abc.abstractmethod
    def read(cls, r: Reader, m: Mapping[str, Any], path: str) -> Self | None:
        """The options of provider mapping ``m`` at ``path``; None when a problem was reported."""


class ProviderType(Protocol):
    """One wire format, as the config reader sees it (``providers.registry.WireFormat`` is one)."""

    @property
    def name(self) -> str:
        """Its ``type`` in the YAML."""

    @property
    def default_base_url(self) -> str | None:
        """None: ``base_url`` is required."""

    @property
    def options(self) -> type[TypeOptions] | None:
        """Its own keys, if it takes any."""


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    type: str
    base_url: str
    api_key: Secret | None = None
    models: tuple[str, ...] | None = None
    endpoints: frozenset[str] = DEFAULT_ENDPOINTS
    timeouts: Timeouts = Timeouts()
    retries: int = 0
    cooldown: Cooldown = Cooldown()
    prices: Mapping[str, Price] = field(default_factory=dict)  # upstream model name -> USD per 1M tokens
    #: the keys only its type takes, as that type read them (an adapter narrows them to its own class)
    options: TypeOptions | None = None
    #: the size of its own connection pool: a provider that hangs cannot take another's connections
    max_connections: int = MAX_CONNECTIONS

    @property
    def shown_url(self) -> str:
        """``base_url`` fit to print: without the credentials a user may have put in it (user:password@, a
        query's key=...)."""
        parts = urlsplit(self.base_url)
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query=""))


def read_resilience(r: Reader, m: Mapping[str, Any], path: str, base: Resilience) -> Resilience:
    """``timeouts``, ``retries`` and ``cooldown`` of mapping ``m``, each key falling back to ``base``."""
    tm = r.mapping(m.get("timeouts"), f"{path}.timeouts", {k: False for k in Timeouts.__dataclass_fields__}) or {}
    timeouts = {k: r.number(v, f"{path}.timeouts.{k}") for k, v in tm.items() if k in Timeouts.__dataclass_fields__}
    retries = r.number(m["retries"], f"{path}.retries", integer=True, minimum=0) if "retries" in m else None
    if retries is not None and retries > 10:
        r.problem(f"{path}.retries", "must be <= 10")
        retries = None
    cm = r.mapping(m.get("cooldown"), f"{path}.cooldown", {"failures": False, "seconds": False}) or {}
    cooldown = {}
    if "failures" in cm:
        cooldown["failures"] = r.number(cm["failures"], f"{path}.cooldown.failures", integer=True, minimum=0)
    if "seconds" in cm:
        cooldown["seconds"] = r.number(cm["seconds"], f"{path}.cooldown.seconds")
    return Resilience(
        replace(base.timeouts, **{k: v for k, v in timeouts.items() if v is not None}),
        base.retries if retries is None else retries,
        replace(base.cooldown, **{k: v for k, v in cooldown.items() if v is not None}),
    )


def url_ok(r: Reader, url: str, path: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        r.problem(path, "not a URL")
        return False
    return True


#: the keys every provider takes (name -> required); a type's own keys are its options' fields
KEYS = {
    "name": True,
    "type": False,
    "base_url": False,
    "api_key": False,
    "models": False,
    "endpoints": False,
    "timeouts": False,
    "retries": False,
    "cooldown": False,
    "prices": False,
    "max_connections": False,
}


def read_provider(
    r: Reader,
    raw: Any,
    path: str,
    types: Mapping[str, ProviderType],
    defaults: Resilience,
    max_connections: int = MAX_CONNECTIONS,
) -> ProviderConfig | None:
    """``types``: the wire formats known; ``max_connections``: the pool size of a provider that does not set its own."""
    owners = _option_owners(types)
    m = r.mapping(raw, path, {**KEYS, **dict.fromkeys(owners, False)})
    if m is None:
        return None
    name = r.name(m["name"], f"{path}.name") if "name" in m else None
    if name == "localrouter":
        r.problem(f"{path}.name", "'localrouter' is reserved")
    ptype = r.string(m.get("type", "openai"), f"{path}.type")
    known = types.get(ptype or "")
    if ptype is not None and known is None:
        r.problem(f"{path}.type", f"unknown provider type {ptype!r} (known: {', '.join(sorted(types))})")
    base_url = r.string(m["base_url"], f"{path}.base_url") if "base_url" in m else None
    if "base_url" not in m and known is not None:
        base_url = known.default_base_url
        if base_url is None:
            r.problem(f"{path}.base_url", f"required for type {ptype}")
    if base_url is not None and not url_ok(r, base_url, f"{path}.base_url"):
        base_url = None
    options = _read_type_options(r, m, path, known, owners)
    api_key = r.string(m["api_key"], f"{path}.api_key") if m.get("api_key") is not None else None
    models = r.strings(m["models"], f"{path}.models") if "models" in m else None
    endpoints = DEFAULT_ENDPOINTS
    if "endpoints" in m:

        def known_endpoint(e: str, p: str) -> bool:
            if e not in ENDPOINTS:
                r.problem(p, f"unknown endpoint {e!r} (known: {', '.join(ENDPOINTS)})")
            return e in ENDPOINTS

        endpoints = frozenset(r.strings(m["endpoints"], f"{path}.endpoints", known_endpoint))
    res = read_resilience(r, m, path, defaults)
    prices = read_prices(r, m.get("prices"), f"{path}.prices")
    if "max_connections" in m:
        max_connections = (
            r.number(m["max_connections"], f"{path}.max_connections", integer=True, minimum=1) or max_connections
        )
    if not (name and ptype and base_url):
        return None
    return ProviderConfig(
        name,
        ptype,
        base_url.rstrip("/"),
        Secret(api_key) if api_key else None,
        models,
        endpoints,
        res.timeouts,
        res.retries,
        res.cooldown,
        prices,
        options=options,
        max_connections=max_connections,
    )


def _option_owners(types: Mapping[str, ProviderType]) -> dict[str, list[str]]:
    """Each type-specific key, and the types that take it."""
    owners: dict[str, list[str]] = {}
    for t in types.values():
        for key in sorted(t.options.keys()) if t.options else ():
            owners.setdefault(key, []).append(t.name)
    return owners


def _read_type_options(
    r: Reader, m: Mapping[str, Any], path: str, kind: ProviderType | None, owners: Mapping[str, list[str]]
) -> TypeOptions | None:
    """The keys only some provider types take: refused on the others, read by the provider's own type."""
    for key, takers in owners.items():
        if key in m and (kind is None or kind.name not in takers):
            r.problem(f"{path}.{key}", f"only for type {', '.join(takers)}")
    return kind.options.read(r, m, path) if kind is not None and kind.options is not None else None
