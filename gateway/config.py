"""Configuration: YAML parsed once, strictly, into frozen typed objects.

Every problem is reported with its YAML path (``providers[1].base_url: not a URL``) and all of them
are collected before giving up, so an operator fixes a file in one pass. ``${VAR}`` in any string
expands from the environment given to :func:`load`; an unset variable is a problem too.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from gateway.confreader import Reader
from gateway.observe_config import (
    LoggingConfig, MetricsConfig, UsageConfig, read_logging, read_metrics, read_usage,
)
from gateway.limits_config import Price, RateLimit, StateConfig, read_prices, read_rate_limits, read_state

#: each wire format, and its default base_url (written the way the provider's own SDK takes it)
PROVIDER_TYPES = {
    "openai": None,  # any OpenAI-compatible server: base_url required
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "ollama": "http://127.0.0.1:11434",
    "azure": None,  # https://{resource}.openai.azure.com
}
ENDPOINTS = ("chat", "completions", "embeddings")
AUTO_MODEL = "localrouter/auto"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MIN_SECRET_LENGTH = 16


class ConfigError(Exception):
    """A configuration that cannot be used; ``problems`` lists every ``path: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Secret:
    """A secret string that never shows itself in a repr, a str or a log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


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


@dataclass(frozen=True)
class StrategyConfig:
    name: str
    allow: tuple[str, ...] = ()
    auto: tuple[str, ...] = ()
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rate_limits: tuple[RateLimit, ...] = ()


@dataclass(frozen=True)
class ClientConfig:
    name: str
    secret_sha256: str = field(repr=False)
    strategy: str
    enabled: bool = True


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 3625
    max_body_bytes: int = 16 * 1024 * 1024
    upstream_connections: int = 1024
    #: the spec's `internal-test` token: off unless enabled, and then only from loopback
    internal_test_token: bool = False
    #: Host header values accepted (empty: any); guards a loopback bind against DNS rebinding
    allowed_hosts: tuple[str, ...] = ()
    #: origins browsers may call from (empty: CORS off; "*": any)
    cors_origins: tuple[str, ...] = ()
    #: reload when the config file changes (SIGHUP always reloads)
    watch_config: bool = True
    #: on SIGTERM: seconds /health answers 503 "draining" while still serving (load balancers notice),
    drain_seconds: float = 0.0
    #: then seconds in-flight requests and streams get to finish after the listener closes
    shutdown_timeout: float = 30.0
    #: timeouts, retries and cooldown for providers that do not set their own
    defaults: Resilience = Resilience()
    #: peers (addresses or CIDR networks) whose X-Forwarded-For and X-Request-ID are believed
    trusted_proxies: tuple[str, ...] = ()


MIN_SIGNING_KEY_LENGTH = 32
SIGNING_KEY_ENV = "LOCALROUTER_SIGNING_KEY"


@dataclass(frozen=True)
class AuthConfig:
    """OAuth access tokens: their lifetime, and the key that signs them (``None``: one random key per
    process, so tokens work only on the process that issued them)."""

    token_ttl: int = 3600
    signing_key: Secret | None = None


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    providers: tuple[ProviderConfig, ...]
    strategies: tuple[StrategyConfig, ...]
    clients: tuple[ClientConfig, ...]
    auth: AuthConfig = AuthConfig()
    state: StateConfig = StateConfig()
    logging: LoggingConfig = LoggingConfig()
    metrics: MetricsConfig = MetricsConfig()
    usage: UsageConfig = UsageConfig()
    source: str = "<embedded default>"
    generated_secret: Secret | None = None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_secret() -> str:
    return "lr-" + secrets.token_urlsafe(32)


# --- reading -------------------------------------------------------------------------------------


def _read_server(r: Reader, raw: Any) -> ServerConfig:
    d = ServerConfig()
    keys = {k: False for k in d.__dataclass_fields__}
    m = r.mapping(raw, "server", keys) or {}
    values: dict[str, Any] = {}
    if "host" in m:
        values["host"] = r.string(m["host"], "server.host")
    if "port" in m:
        values["port"] = r.number(m["port"], "server.port", integer=True, minimum=0)
        if values["port"] is not None and values["port"] > 65535:
            r.problem("server.port", "must be <= 65535")
    for key in ("drain_seconds", "shutdown_timeout"):
        if key in m:
            values[key] = r.number(m[key], f"server.{key}", minimum=0)
    if "max_body_bytes" in m:
        values["max_body_bytes"] = r.number(m["max_body_bytes"], "server.max_body_bytes", integer=True, minimum=1024)
    if "upstream_connections" in m:
        values["upstream_connections"] = r.number(m["upstream_connections"], "server.upstream_connections",
                                                  integer=True, minimum=1)
    if "defaults" in m:
        dm = r.mapping(m["defaults"], "server.defaults", {"timeouts": False, "retries": False, "cooldown": False})
        values["defaults"] = _read_resilience(r, dm or {}, "server.defaults", Resilience())
    for key in ("internal_test_token", "watch_config"):
        if key in m:
            values[key] = r.boolean(m[key], f"server.{key}")
    if "trusted_proxies" in m:
        def network(value: str, p: str) -> bool:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                r.problem(p, f"not an address or network: {value!r}")
                return False
            return True
        values["trusted_proxies"] = r.strings(m["trusted_proxies"], "server.trusted_proxies", network)
    if "allowed_hosts" in m:
        values["allowed_hosts"] = tuple(h.lower() for h in r.strings(m["allowed_hosts"], "server.allowed_hosts"))
    if "cors_origins" in m:
        def origin(o: str, p: str) -> bool:
            if o != "*" and not _url_ok(r, o, p):
                return False
            return True
        values["cors_origins"] = tuple(o.rstrip("/") for o in r.strings(m["cors_origins"], "server.cors_origins",
                                                                          origin))
    return ServerConfig(**{k: v for k, v in values.items() if v is not None})


def _read_auth(r: Reader, raw: Any, env: Mapping[str, str]) -> AuthConfig:
    m = r.mapping(raw, "auth", {"token_ttl": False, "signing_key": False}) or {}
    ttl = r.number(m["token_ttl"], "auth.token_ttl", integer=True) if "token_ttl" in m else AuthConfig.token_ttl
    key = r.string(m["signing_key"], "auth.signing_key") if m.get("signing_key") is not None else env.get(
        SIGNING_KEY_ENV) or None
    if key is not None and len(key) < MIN_SIGNING_KEY_LENGTH:
        where = "auth.signing_key" if "signing_key" in m else f"environment variable {SIGNING_KEY_ENV}"
        r.problem(where, f"too short (at least {MIN_SIGNING_KEY_LENGTH} characters)")
        key = None
    return AuthConfig(ttl or AuthConfig.token_ttl, Secret(key) if key else None)


def _read_resilience(r: Reader, m: Mapping[str, Any], path: str, base: Resilience) -> Resilience:
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


def _url_ok(r: Reader, url: str, path: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        r.problem(path, "not a URL")
        return False
    return True


def _read_provider(r: Reader, raw: Any, path: str, defaults: Resilience) -> ProviderConfig | None:
    keys = {"name": True, "type": False, "base_url": False, "api_key": False, "models": False,
            "endpoints": False, "timeouts": False, "retries": False, "cooldown": False, "prices": False,
            "api_version": False, "deployments": False, "default_max_tokens": False}
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
    if base_url is not None and not _url_ok(r, base_url, f"{path}.base_url"):
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
    res = _read_resilience(r, m, path, defaults)
    prices = read_prices(r, m.get("prices"), f"{path}.prices")
    if not (name and ptype and base_url):
        return None
    return ProviderConfig(name, ptype, base_url.rstrip("/"), Secret(api_key) if api_key else None,
                          models, endpoints, res.timeouts, res.retries, res.cooldown, prices, **extra)


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
            out["deployments"] = {str(k): v for k, v in ((k, r.string(v, f"{path}.deployments.{k}"))
                                                          for k, v in deployments.items()) if v}
    if ptype == "anthropic" and "default_max_tokens" in m:
        value = r.number(m["default_max_tokens"], f"{path}.default_max_tokens", integer=True)
        if value is not None:
            out["default_max_tokens"] = value
    return {k: v for k, v in out.items() if v is not None}


def _check_model_ref(r: Reader, providers: Mapping[str, ProviderConfig], model: str, path: str) -> bool:
    provider, sep, upstream = model.partition("/")
    if not sep or not provider or not upstream:
        r.problem(path, f"{model!r} is not a 'provider/model' id")
    elif provider not in providers:
        r.problem(path, f"unknown provider {provider!r} in {model!r}")
    elif providers[provider].models is not None and upstream not in providers[provider].models:
        r.problem(path, f"provider {provider!r} does not list model {upstream!r}")
    else:
        return True
    return False


def _read_strategy(
    r: Reader, raw: Any, path: str, providers: Mapping[str, ProviderConfig]
) -> StrategyConfig | None:
    m = r.mapping(raw, path, {"name": True, "allow": False, "auto": False, "fallbacks": False, "rate_limits": False})
    if m is None:
        return None
    name = r.name(m["name"], f"{path}.name") if "name" in m else None
    allow = r.strings(m.get("allow"), f"{path}.allow")
    def ref(model: str, p: str) -> bool:
        return _check_model_ref(r, providers, model, p)

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
    return StrategyConfig(name, allow, auto, fallbacks, limits) if name else None


def _read_client(
    r: Reader, raw: Any, path: str, strategies: frozenset[str], digests: dict[str, str]
) -> ClientConfig | None:
    keys = {"name": True, "secret": False, "secret_sha256": False, "strategy": True, "enabled": False}
    m = r.mapping(raw, path, keys)
    if m is None:
        return None
    name = r.name(m["name"], f"{path}.name") if "name" in m else None
    strategy = r.string(m["strategy"], f"{path}.strategy") if "strategy" in m else None
    if strategy is not None and strategy not in strategies:
        r.problem(f"{path}.strategy", f"unknown strategy {strategy!r}")
    enabled = r.boolean(m.get("enabled", True), f"{path}.enabled")
    digest = None
    if ("secret" in m) == ("secret_sha256" in m):
        r.problem(path, "exactly one of 'secret' or 'secret_sha256' is required")
    elif "secret" in m:
        secret = r.string(m["secret"], f"{path}.secret")
        if secret is not None and len(secret) < MIN_SECRET_LENGTH:
            r.problem(f"{path}.secret", f"too short (at least {MIN_SECRET_LENGTH} characters)")
        elif secret is not None:
            digest = hash_secret(secret)
    else:
        digest = r.string(m["secret_sha256"], f"{path}.secret_sha256")
        if digest is not None and not _SHA256_RE.match(digest.lower()):
            r.problem(f"{path}.secret_sha256", "expected 64 hexadecimal characters")
            digest = None
        digest = digest.lower() if digest else None
    if digest is not None and digest in digests:
        r.problem(path, f"has the same secret as client {digests[digest]!r}")
    elif digest is not None:
        digests[digest] = name or path
    if not (name and strategy and digest) or enabled is None:
        return None
    return ClientConfig(name, digest, strategy, enabled)


def _read_list(r: Reader, raw: Any, key: str, read: Callable[[Reader, Any, str], Any]) -> tuple[Any, ...]:
    items = [read(r, item, f"{key}[{i}]") for i, item in enumerate(r.sequence(raw, key))]
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item is not None and item.name in seen:
            r.problem(f"{key}[{i}].name", f"duplicate name {item.name!r}")
        elif item is not None:
            seen.add(item.name)
    return tuple(item for item in items if item is not None)


def parse(data: Any, env: Mapping[str, str], source: str = "<config>") -> Config:
    """Turn a loaded YAML document into a :class:`Config`, or raise :class:`ConfigError`."""
    r = Reader(env)
    top = r.mapping(data, "", {"server": False, "providers": True, "strategies": True, "clients": True,
                               "auth": False, "state": False, "logging": False, "metrics": False, "usage": False})
    if top is None:
        raise ConfigError(r.problems)
    server = _read_server(r, top.get("server"))
    providers = _read_list(r, top.get("providers"), "providers",
                           lambda r, raw, path: _read_provider(r, raw, path, server.defaults))
    by_name = {p.name: p for p in providers}
    strategies = _read_list(r, top.get("strategies"), "strategies",
                            lambda r, raw, path: _read_strategy(r, raw, path, by_name))
    names, digests = frozenset(s.name for s in strategies), {}
    clients = _read_list(r, top.get("clients"), "clients",
                         lambda r, raw, path: _read_client(r, raw, path, names, digests))
    auth = _read_auth(r, top.get("auth"), env)
    cfg = Config(server, providers, strategies, clients, auth, read_state(r, top.get("state")),
                 read_logging(r, top.get("logging")), read_metrics(r, top.get("metrics")),
                 read_usage(r, top.get("usage")), source)
    if r.problems:
        raise ConfigError(r.problems)
    return cfg


def load(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and parse a YAML file."""
    env = os.environ if env is None else env
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: invalid YAML: {exc}"]) from None
    return parse(data, env, str(path))


def default(env: Mapping[str, str] | None = None) -> Config:
    """The embedded default: local Ollama, OpenAI when OPENAI_API_KEY is set, one open client."""
    env = os.environ if env is None else env
    providers = [ProviderConfig("ollama", "openai", "http://127.0.0.1:11434/v1")]
    if env.get("OPENAI_API_KEY"):
        providers.append(ProviderConfig("openai", "openai", "https://api.openai.com/v1",
                                        Secret(env["OPENAI_API_KEY"])))
    secret = env.get("LOCALROUTER_SECRET")
    generated = None
    if not secret:
        secret = generate_secret()
        generated = Secret(secret)
    client = ClientConfig("default", hash_secret(secret), "default")
    key = env.get(SIGNING_KEY_ENV)
    if key and len(key) < MIN_SIGNING_KEY_LENGTH:
        raise ConfigError([f"environment variable {SIGNING_KEY_ENV}: too short (at least "
                           f"{MIN_SIGNING_KEY_LENGTH} characters)"])
    auth = AuthConfig(signing_key=Secret(key)) if key else AuthConfig()
    return Config(ServerConfig(), tuple(providers), (StrategyConfig("default", ("*",)),),
                  (client,), auth, generated_secret=generated)


def resolve(path: str | None, env: Mapping[str, str] | None = None) -> Config:
    """The config ``serve`` runs: the given file, else ./localrouter.yaml, else the default."""
    if path is not None:
        return load(path, env)
    if Path("localrouter.yaml").is_file():
        return load("localrouter.yaml", env)
    return default(env)
