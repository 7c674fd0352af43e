"""The config of what the gateway tells its operator: access log, metrics, usage records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.config.reader import Reader


@dataclass(frozen=True)
class LoggingConfig:
    access: bool = True  # one JSON line per request on stdout
    bodies: bool = False  # include request and answer bodies in those lines (prompts! off by default)


#: set by ``serve --workers`` for its workers (not a YAML key): where each worker keeps its metrics snapshot
METRICS_DIR_ENV = "LOCALROUTER_METRICS_DIR"


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = True
    token: str | None = None  # bearer token /metrics asks for; None: open (like /health)
    #: under ``serve --workers``: the directory the workers share their snapshots through (from the
    #: environment the supervisor gives them); None: one process, nothing shared
    snapshot_dir: str | None = None


@dataclass(frozen=True)
class UsageConfig:
    path: str | None = "localrouter-usage.db"  # SQLite file; None: no usage records


def read_logging(r: Reader, raw: Any) -> LoggingConfig:
    m = r.mapping(raw, "logging", {"access": False, "bodies": False}) or {}
    values = {k: r.boolean(m[k], f"logging.{k}") for k in ("access", "bodies") if k in m}
    return LoggingConfig(**{k: v for k, v in values.items() if v is not None})


def read_metrics(r: Reader, raw: Any, env: Mapping[str, str]) -> MetricsConfig:
    m = r.mapping(raw, "metrics", {"enabled": False, "token": False}) or {}
    enabled = r.boolean(m["enabled"], "metrics.enabled") if "enabled" in m else True
    token = r.string(m["token"], "metrics.token") if m.get("token") is not None else None
    if token is not None and len(token) < 16:
        r.problem("metrics.token", "too short (at least 16 characters)")
        token = None
    return MetricsConfig(True if enabled is None else enabled, token, env.get(METRICS_DIR_ENV) or None)


def read_usage(r: Reader, raw: Any) -> UsageConfig:
    m = r.mapping(raw, "usage", {"path": False}) or {}
    if "path" not in m:
        return UsageConfig()
    return UsageConfig(r.string(m["path"], "usage.path") if m["path"] is not None else None)
