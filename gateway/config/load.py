"""The whole configuration: YAML parsed once, strictly, into frozen typed objects (one module per section).

Every problem is reported with its YAML path (``providers[1].base_url: not a URL``) and all of them
are collected before giving up, so an operator fixes a file in one pass. ``${VAR}`` in any string
expands from the environment given to :func:`load`; an unset variable is a problem too.

The provider types are an argument (``types``, ``providers.registry.TYPES`` outside the tests): each
wire format declares its own keys in its adapter's module, which sits above this package.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway.config.auth import MIN_SIGNING_KEY_LENGTH, SIGNING_KEY_ENV, AuthConfig, read_auth
from gateway.config.cache import CacheConfig, read_cache
from gateway.config.clients import MIN_SECRET_LENGTH, ClientConfig, generate_secret, hash_secret, read_client
from gateway.config.firewall import FirewallConfig, read_firewall
from gateway.config.limits import StateConfig, read_state
from gateway.config.mcp import McpConfig, McpServerConfig, read_mcp, read_mcp_server
from gateway.config.observability import (
    METRICS_DIR_ENV,
    LoggingConfig,
    MetricsConfig,
    UsageConfig,
    read_logging,
    read_metrics,
    read_usage,
)
from gateway.config.pools import PoolConfig, check_names, read_pool
from gateway.config.providers import ProviderConfig, ProviderType, read_provider
from gateway.config.reader import Reader, Secret
from gateway.config.responses import ResponsesConfig, read_responses
from gateway.config.server import ServerConfig, read_server
from gateway.config.strategies import StrategyConfig, check_model_ref, read_strategy
from gateway.config.tracing import TracingConfig, read_tracing


class ConfigError(Exception):
    """A configuration that cannot be used; ``problems`` lists every ``path: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


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
    responses: ResponsesConfig = ResponsesConfig()
    source: str = "<embedded default>"
    generated_secret: Secret | None = None
    mcp_servers: tuple[McpServerConfig, ...] = ()
    tracing: TracingConfig = TracingConfig()
    pools: tuple[PoolConfig, ...] = ()
    mcp: McpConfig = McpConfig()
    cache: CacheConfig = CacheConfig()
    firewall: FirewallConfig = FirewallConfig()


def _read_list(r: Reader, raw: Any, key: str, read: Callable[[Reader, Any, str], Any]) -> tuple[Any, ...]:
    items = [read(r, item, f"{key}[{i}]") for i, item in enumerate(r.sequence(raw, key))]
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item is not None and item.name in seen:
            r.problem(f"{key}[{i}].name", f"duplicate name {item.name!r}")
        elif item is not None:
            seen.add(item.name)
    return tuple(item for item in items if item is not None)


def parse(data: Any, env: Mapping[str, str], source: str = "<config>", *, types: Mapping[str, ProviderType]) -> Config:
    """Turn a loaded YAML document into a :class:`Config`, or raise :class:`ConfigError`; ``types``:
    the provider types known, by name."""
    r = Reader(env)
    top = r.mapping(
        data,
        "",
        {
            "server": False,
            "providers": True,
            "strategies": True,
            "clients": True,
            "auth": False,
            "state": False,
            "logging": False,
            "metrics": False,
            "usage": False,
            "responses": False,
            "mcp_servers": False,
            "tracing": False,
            "pools": False,
            "mcp": False,
            "cache": False,
            "firewall": False,
        },
    )
    if top is None:
        raise ConfigError(r.problems)
    server = read_server(r, top.get("server"))
    providers = _read_list(
        r,
        top.get("providers"),
        "providers",
        lambda r, raw, path: read_provider(r, raw, path, types, server.defaults, server.upstream_connections),
    )
    by_name = {p.name: p for p in providers}
    mcp_servers = _read_list(r, top.get("mcp_servers"), "mcp_servers", read_mcp_server)
    servers = frozenset(s.name for s in mcp_servers)

    def target_ok(model: str, path: str) -> bool:
        return check_model_ref(r, by_name, model, path)

    pools = _read_list(r, top.get("pools"), "pools", lambda r, raw, path: read_pool(r, raw, path, target_ok))
    check_names(r, pools, by_name)
    pool_ids = frozenset(p.id for p in pools)
    cache = read_cache(r, top.get("cache"))
    strategies = _read_list(
        r,
        top.get("strategies"),
        "strategies",
        lambda r, raw, path: read_strategy(r, raw, path, by_name, servers, pool_ids, cache.ttl),
    )
    names, digests = frozenset(s.name for s in strategies), dict[str, str]()
    clients = _read_list(
        r, top.get("clients"), "clients", lambda r, raw, path: read_client(r, raw, path, names, digests)
    )
    auth = read_auth(r, top.get("auth"), env)
    cfg = Config(
        server,
        providers,
        strategies,
        clients,
        auth,
        read_state(r, top.get("state")),
        read_logging(r, top.get("logging")),
        read_metrics(r, top.get("metrics"), env),
        read_usage(r, top.get("usage")),
        read_responses(r, top.get("responses")),
        source,
        mcp_servers=mcp_servers,
        tracing=read_tracing(r, top.get("tracing")),
        pools=pools,
        mcp=read_mcp(r, top.get("mcp")),
        cache=cache,
        firewall=read_firewall(r, top.get("firewall")),
    )
    if r.problems:
        raise ConfigError(r.problems)
    return cfg


def load(path: str | Path, env: Mapping[str, str] | None = None, *, types: Mapping[str, ProviderType]) -> Config:
    """Read and parse a YAML file (``types`` as for :func:`parse`)."""
    env = os.environ if env is None else env
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: invalid YAML: {exc}"]) from None
    return parse(data, env, str(path), types=types)


def default(env: Mapping[str, str] | None = None) -> Config:
    """The embedded default: local Ollama, OpenAI when OPENAI_API_KEY is set, one open client."""
    env = os.environ if env is None else env
    providers = [ProviderConfig("ollama", "openai", "http://127.0.0.1:11434/v1")]
    if env.get("OPENAI_API_KEY"):
        providers.append(ProviderConfig("openai", "openai", "https://api.openai.com/v1", Secret(env["OPENAI_API_KEY"])))
    secret = env.get("LOCALROUTER_SECRET")
    generated = None
    if not secret:
        secret = generate_secret()
        generated = Secret(secret)
    client = ClientConfig("default", hash_secret(secret), "default")
    key = env.get(SIGNING_KEY_ENV)
    problems = [
        f"environment variable {name}: too short (at least {minimum} characters)"
        for name, value, minimum in (
            ("LOCALROUTER_SECRET", secret, MIN_SECRET_LENGTH),
            (SIGNING_KEY_ENV, key, MIN_SIGNING_KEY_LENGTH),
        )
        if value and len(value) < minimum
    ]
    if problems:
        raise ConfigError(problems)
    auth = AuthConfig(signing_key=Secret(key)) if key else AuthConfig()
    return Config(
        ServerConfig(),
        tuple(providers),
        (StrategyConfig("default", ("*",)),),
        (client,),
        auth,
        metrics=MetricsConfig(snapshot_dir=env.get(METRICS_DIR_ENV) or None),
        generated_secret=generated,
    )


def resolve(path: str | None, env: Mapping[str, str] | None = None, *, types: Mapping[str, ProviderType]) -> Config:
    """The config ``serve`` runs: the given file, else ./localrouter.yaml, else the default."""
    if path is not None:
        return load(path, env, types=types)
    if Path("localrouter.yaml").is_file():
        return load("localrouter.yaml", env, types=types)
    return default(env)
