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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.confreader import Reader, Secret
from gateway.provider_config import (
    ENDPOINTS, MAX_CONNECTIONS, PROVIDER_TYPES, Cooldown, ProviderConfig, Resilience, Timeouts, read_provider,
    read_resilience, url_ok,
)
from gateway.observe_config import (
    LoggingConfig, MetricsConfig, UsageConfig, read_logging, read_metrics, read_usage,
)
from gateway.limits_config import RateLimit, StateConfig, read_rate_limits, read_state

AUTO_MODEL = "localrouter/auto"

# re-exported: the rest of the code takes every config type from here
__all__ = ["AUTO_MODEL", "ENDPOINTS", "PROVIDER_TYPES", "AuthConfig", "ClientConfig", "Config", "ConfigError",
           "Cooldown", "ProviderConfig", "Resilience", "Secret", "ServerConfig", "StrategyConfig", "Timeouts",
           "default", "generate_secret", "hash_secret", "load", "parse", "resolve"]
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MIN_SECRET_LENGTH = 16


class ConfigError(Exception):
    """A configuration that cannot be used; ``problems`` lists every ``path: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


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
    #: the connection pool size of each provider that does not set ``max_connections``
    upstream_connections: int = MAX_CONNECTIONS
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
    #: seconds from a request's first byte to the end of its headers (408, then the connection closes)
    header_timeout: float = 30.0
    #: seconds from the end of a request's headers to the end of its body (408, then the connection closes)
    body_timeout: float = 60.0
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
    for key in ("header_timeout", "body_timeout"):
        if key in m:
            values[key] = r.number(m[key], f"server.{key}")
    if "max_body_bytes" in m:
        values["max_body_bytes"] = r.number(m["max_body_bytes"], "server.max_body_bytes", integer=True, minimum=1024)
    if "upstream_connections" in m:
        values["upstream_connections"] = r.number(m["upstream_connections"], "server.upstream_connections",
                                                  integer=True, minimum=1)
    if "defaults" in m:
        dm = r.mapping(m["defaults"], "server.defaults", {"timeouts": False, "retries": False, "cooldown": False})
        values["defaults"] = read_resilience(r, dm or {}, "server.defaults", Resilience())
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
            if o != "*" and not url_ok(r, o, p):
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
                           lambda r, raw, path: read_provider(r, raw, path, server.defaults,
                                                               server.upstream_connections))
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
    problems = [f"environment variable {name}: too short (at least {minimum} characters)"
                for name, value, minimum in (("LOCALROUTER_SECRET", secret, MIN_SECRET_LENGTH),
                                             (SIGNING_KEY_ENV, key, MIN_SIGNING_KEY_LENGTH))
                if value and len(value) < minimum]
    if problems:
        raise ConfigError(problems)
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
