"""Configuration: YAML parsed once, strictly, into frozen typed objects; one module per section.

``load`` (the whole document: parse, load, the embedded default), ``server``, ``providers`` (what
every provider takes; the provider types, with their own keys, are passed in as ``types``: each is
declared by its wire format, see ``providers.registry``), ``strategies``, ``clients``, ``auth``,
``limits`` (rate limits, prices, the state backend), ``observability`` (access log, metrics, usage
records), ``tracing`` (OpenTelemetry spans over OTLP), ``responses`` (stored responses), ``mcp``
(upstream MCP servers, the MCP endpoint's sessions), ``pools`` (one model over several deployments),
``cache`` (the response cache), ``firewall`` (rules, secrets in prompts), and ``reader`` (walking the YAML
tree, with every problem's path, and ``${VAR}`` expansion). The rest of the code takes config types from here.
"""

from gateway.config.auth import MIN_SIGNING_KEY_LENGTH, SIGNING_KEY_ENV, AuthConfig
from gateway.config.cache import CacheConfig
from gateway.config.clients import MIN_SECRET_LENGTH, ClientConfig, generate_secret, hash_secret
from gateway.config.firewall import FirewallConfig, FirewallRule
from gateway.config.limits import Price, RateLimit, StateConfig
from gateway.config.load import Config, ConfigError, default, load, parse, resolve
from gateway.config.mcp import SEPARATOR as MCP_SEPARATOR
from gateway.config.mcp import McpConfig, McpServerConfig, McpTimeouts
from gateway.config.observability import LoggingConfig, MetricsConfig, UsageConfig
from gateway.config.pools import PREFIX as POOL_PREFIX
from gateway.config.pools import PoolConfig
from gateway.config.providers import (
    ENDPOINTS,
    Cooldown,
    ProviderConfig,
    ProviderType,
    Resilience,
    Timeouts,
    TypeOptions,
)
from gateway.config.reader import Reader, Secret
from gateway.config.responses import ResponsesConfig
from gateway.config.server import ServerConfig
from gateway.config.strategies import AUTO_MODEL, StrategyConfig
from gateway.config.tracing import TracingConfig

__all__ = [
    "AUTO_MODEL",
    "ENDPOINTS",
    "MCP_SEPARATOR",
    "MIN_SECRET_LENGTH",
    "MIN_SIGNING_KEY_LENGTH",
    "POOL_PREFIX",
    "SIGNING_KEY_ENV",
    "AuthConfig",
    "CacheConfig",
    "ClientConfig",
    "Config",
    "ConfigError",
    "Cooldown",
    "FirewallConfig",
    "FirewallRule",
    "LoggingConfig",
    "McpConfig",
    "McpServerConfig",
    "McpTimeouts",
    "MetricsConfig",
    "PoolConfig",
    "Price",
    "ProviderConfig",
    "ProviderType",
    "RateLimit",
    "Reader",
    "Resilience",
    "ResponsesConfig",
    "Secret",
    "ServerConfig",
    "StateConfig",
    "StrategyConfig",
    "Timeouts",
    "TracingConfig",
    "TypeOptions",
    "UsageConfig",
    "default",
    "generate_secret",
    "hash_secret",
    "load",
    "parse",
    "resolve",
]
