"""``mcp_servers:``: the upstream MCP servers the gateway offers (stdio ``command`` or Streamable HTTP ``url``);
``mcp:``: the MCP endpoint's sessions.

A server's name prefixes its tools and prompts (``files__read_file``), so it may not hold the separator
``__`` nor end with ``_`` (``files___x`` would split two ways). ``env`` and ``headers`` values usually
carry tokens (``${FILES_TOKEN}``): they are kept as :class:`Secret`, out of every repr and log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config.providers import url_ok
from gateway.config.reader import Reader, Secret

#: between a server's name and its tool's or prompt's name: ``{server}__{name}``
SEPARATOR = "__"


@dataclass(frozen=True)
class McpTimeouts:
    """Seconds: to start (or reconnect) and initialize a session; for one call or one whole list."""

    connect: float = 10.0
    call: float = 60.0


@dataclass(frozen=True)
class McpServerConfig:
    name: str
    command: tuple[str, ...] | None = None  # stdio: the argv of the server's process
    url: str | None = None  # Streamable HTTP
    env: Mapping[str, Secret] = field(default_factory=dict)  # stdio: over the SDK's inherited PATH, HOME, ...
    headers: Mapping[str, Secret] = field(default_factory=dict)  # http: sent with every request
    timeouts: McpTimeouts = McpTimeouts()

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"


def read_mcp_server(r: Reader, raw: Any, path: str) -> McpServerConfig | None:
    keys = {"name": True, "command": False, "url": False, "env": False, "headers": False, "timeouts": False}
    m = r.mapping(raw, path, keys)
    if m is None:
        return None
    name = _read_name(r, m["name"], f"{path}.name") if "name" in m else None
    command = url = None
    if ("command" in m) == ("url" in m):
        r.problem(path, "exactly one of 'command' (stdio) or 'url' (Streamable HTTP) is required")
    elif "command" in m:
        command = r.strings(m["command"], f"{path}.command") or None
        if command is None and isinstance(m["command"], list):
            r.problem(f"{path}.command", "must not be empty")
    else:
        url = r.string(m["url"], f"{path}.url")
        url = url if url is not None and url_ok(r, url, f"{path}.url") else None
    env = _read_secrets(r, m.get("env"), f"{path}.env")
    headers = _read_secrets(r, m.get("headers"), f"{path}.headers")
    for key, holder in (("env", url), ("headers", command)):
        if key in m and holder is not None:
            r.problem(f"{path}.{key}", f"only for {'stdio' if key == 'env' else 'Streamable HTTP'} servers")
    timeouts = _read_timeouts(r, m.get("timeouts"), f"{path}.timeouts")
    if name is None or (command is None and url is None):
        return None
    return McpServerConfig(name, command, url, env, headers, timeouts)


def _read_name(r: Reader, raw: Any, path: str) -> str | None:
    name = r.name(raw, path)
    if name is not None and (SEPARATOR in name or name.endswith("_")):
        r.problem(path, f"{name!r}: it prefixes its tools as '{name}{SEPARATOR}tool': no '__' in it, no '_' at its end")
        return None
    return name


def _read_secrets(r: Reader, raw: Any, path: str) -> dict[str, Secret]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        r.problem(path, "expected a mapping of names to strings")
        return {}
    out = {}
    for key, value in raw.items():
        text = r.string(value, f"{path}.{key}")
        if not isinstance(key, str) or not key:
            r.problem(f"{path}.{key}", "a name must be a non-empty string")
        elif text is not None:
            out[key] = Secret(text)
    return out


def _read_timeouts(r: Reader, raw: Any, path: str) -> McpTimeouts:
    m = r.mapping(raw, path, {"connect": False, "call": False}) or {}
    values = {k: r.number(v, f"{path}.{k}") for k, v in m.items() if k in ("connect", "call")}
    return McpTimeouts(**{k: float(v) for k, v in values.items() if v is not None})


@dataclass(frozen=True)
class McpConfig:
    """The MCP endpoint's sessions: how many one client may hold (past it, its least recently used one
    ends), how many a process keeps in all, and the seconds unused after which one ends."""

    max_sessions_per_client: int = 100
    max_sessions: int = 10_000
    session_idle: float = 3600.0


def read_mcp(r: Reader, raw: Any) -> McpConfig:
    keys = {"max_sessions_per_client": False, "max_sessions": False, "session_idle": False}
    m = r.mapping(raw, "mcp", keys) or {}
    integers = {
        k: r.number(m[k], f"mcp.{k}", integer=True) for k in ("max_sessions_per_client", "max_sessions") if k in m
    }
    idle = r.number(m["session_idle"], "mcp.session_idle") if "session_idle" in m else None
    d = McpConfig()
    return McpConfig(
        integers.get("max_sessions_per_client") or d.max_sessions_per_client,
        integers.get("max_sessions") or d.max_sessions,
        float(idle or d.session_idle),
    )
