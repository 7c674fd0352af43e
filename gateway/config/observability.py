"""The config of what the gateway tells its operator: access log, metrics, usage records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.config.reader import Reader, Secret


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
    path: str | None = "localrouter-usage.db"  # SQLite file; None: no usage records (backend sqlite)
    backend: str = "sqlite"  # sqlite: one file on this host; postgres: one database every replica shares
    url: Secret | None = None  # postgresql://user:password@host/db (backend postgres)
    pool: int = 10  # connections per process and store (backend postgres)
    retention_days: int | None = None  # records older are deleted; None: kept

    @property
    def enabled(self) -> bool:
        return self.backend == "postgres" or self.path is not None


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


_USAGE_KEYS = {"path": False, "backend": False, "url": False, "pool": False, "retention_days": False}


def read_usage(r: Reader, raw: Any) -> UsageConfig:
    m = r.mapping(raw, "usage", _USAGE_KEYS) or {}
    path = UsageConfig.path
    if "path" in m:
        path = r.string(m["path"], "usage.path") if m["path"] is not None else None
    backend = r.string(m.get("backend", "sqlite"), "usage.backend")
    if backend not in ("sqlite", "postgres"):
        r.problem("usage.backend", "expected sqlite or postgres")
    url = r.string(m["url"], "usage.url") if m.get("url") is not None else None
    if backend == "postgres" and not url:
        r.problem("usage.url", "required with backend postgres")
    elif url and not url.startswith(("postgresql://", "postgres://")):
        r.problem("usage.url", "expected a postgresql:// URL")  # never the URL itself: it holds the password
    pool = r.number(m["pool"], "usage.pool", integer=True) if "pool" in m else None
    days = (
        r.number(m["retention_days"], "usage.retention_days", integer=True)
        if m.get("retention_days") is not None
        else None
    )
    return UsageConfig(
        path, backend or "sqlite", Secret(url) if url else None, pool or UsageConfig.pool, days if days else None
    )
