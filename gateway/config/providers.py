"""Providers in the config: their types, timeouts, retries, cooldown, prices and type-specific keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from gateway.config.limits import Price, read_prices
from gateway.config.reader import Reader, Secret

#: each wire format, and its default base_url (written the way the provider's own SDK takes it)
PROVIDER_TYPES = {
    "openai": None,  # any OpenAI-compatible server: base_url required
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "ollama": "http://127.0.0.1:11434",
    "azure": None,  # https://{resource}.openai.azure.com
}
ENDPOINTS = ("chat", "completions", "embeddings")
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
class ProviderConfig:
    name: str
    type: str
    base_url: str
    api_key: Secret | None = None
    models: tuple[str, ...] | None = None
    endpoints: frozenset[str] = frozenset(ENDPOINTS)
    timeouts: Timeouts = Timeouts()
    retries: int = 0
    cooldown: Cooldown = Cooldown()
    prices: Mapping[str, Price] = field(default_factory=dict)  # upstream model name -> USD per 1M tokens
    api_version: str | None = None  # azure: the api-version query parameter
    deployments: Mapping[str, str] = field(default_factory=dict)  # azure: model name -> deployment name
    default_max_tokens: int = 4096  # anthropic: max_tokens is required upstream; sent when the client omits it
    #: the size of its own connection pool: a provider that hangs cannot take another's connections
    max_connections: int = MAX_CONNECTIONS


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


def read_provider(
    r: Reader, raw: Any, path: str, defaults: Resilience, max_connections: int = MAX_CONNECTIONS
) -> ProviderConfig | None:
    """``max_connections``: the pool size of a provider that does not set its own."""
    keys = {
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
        "api_version": False,
        "deployments": False,
        "default_max_tokens": False,
        "max_connections": False,
    }
    m = r.mapping(raw, path, keys)
    if m is None:
        return None
    name = r.name(m["name"], f"{path}.name") if "name" in m else None
    if name == "localrouter":
        r.problem(f"{path}.name", "'localrouter' is reserved")
    ptype = r.string(m.get("type", "openai"), f"{path}.type")
    if ptype is not None and ptype not in PROVIDER_TYPES:
        r.problem(f"{path}.type", f"unknown provider type {ptype!r} (known: {', '.join(sorted(PROVIDER_TYPES))})")
    base_url = r.string(m["base_url"], f"{path}.base_url") if "base_url" in m else PROVIDER_TYPES.get(ptype or "")
    if base_url is None and "base_url" not in m and ptype in PROVIDER_TYPES:
        r.problem(f"{path}.base_url", f"required for type {ptype}")
    if base_url is not None and not url_ok(r, base_url, f"{path}.base_url"):
        base_url = None
    extra = _read_type_options(r, m, path, ptype)
    if ptype == "azure" and "models" not in m and not extra.get("deployments"):
        r.problem(path, "type azure needs `models` or `deployments` (Azure has no model list to discover)")
    api_key = r.string(m["api_key"], f"{path}.api_key") if m.get("api_key") is not None else None
    models = r.strings(m["models"], f"{path}.models") if "models" in m else None
    endpoints = frozenset(ENDPOINTS)
    if "endpoints" in m:

        def known(e: str, p: str) -> bool:
            if e not in ENDPOINTS:
                r.problem(p, f"unknown endpoint {e!r} (known: {', '.join(ENDPOINTS)})")
            return e in ENDPOINTS

        endpoints = frozenset(r.strings(m["endpoints"], f"{path}.endpoints", known))
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
        max_connections=max_connections,
        **extra,
    )


def _read_type_options(r: Reader, m: Mapping[str, Any], path: str, ptype: str | None) -> dict[str, Any]:
    """The keys only one provider type takes."""
    out: dict[str, Any] = {}
    own = {"api_version": "azure", "deployments": "azure", "default_max_tokens": "anthropic"}
    for key, owner in own.items():
        if key in m and ptype != owner:
            r.problem(f"{path}.{key}", f"only for type {owner}")
    if ptype == "azure":
        out["api_version"] = r.string(m["api_version"], f"{path}.api_version") if "api_version" in m else None
        if "api_version" not in m:
            r.problem(f"{path}.api_version", "required for type azure (e.g. 2024-10-21)")
        deployments = m.get("deployments") or {}
        if not isinstance(deployments, dict):
            r.problem(f"{path}.deployments", "expected a mapping of model name to deployment name")
        else:
            out["deployments"] = {
                str(k): v for k, v in ((k, r.string(v, f"{path}.deployments.{k}")) for k, v in deployments.items()) if v
            }
    if ptype == "anthropic" and "default_max_tokens" in m:
        value = r.number(m["default_max_tokens"], f"{path}.default_max_tokens", integer=True)
        if value is not None:
            out["default_max_tokens"] = value
    return {k: v for k, v in out.items() if v is not None}
