"""``server:``: where and how the gateway listens, and the defaults every provider falls back on."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from gateway.config.providers import MAX_CONNECTIONS, Resilience, read_resilience, url_ok
from gateway.config.reader import Reader


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


def read_server(r: Reader, raw: Any) -> ServerConfig:
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
        values["upstream_connections"] = r.number(
            m["upstream_connections"], "server.upstream_connections", integer=True, minimum=1
        )
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

        values["cors_origins"] = tuple(
            o.rstrip("/") for o in r.strings(m["cors_origins"], "server.cors_origins", origin)
        )
    return ServerConfig(**{k: v for k, v in values.items() if v is not None})
