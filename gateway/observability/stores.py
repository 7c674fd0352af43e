"""Which store the config names for usage records and stored responses: SQLite (one host) or
PostgreSQL (every replica)."""

from __future__ import annotations

from gateway.config.observability import UsageConfig
from gateway.observability.postgres import PostgresResponsesStore, PostgresStore
from gateway.observability.responses_store import ResponsesStore, SQLiteResponsesStore
from gateway.observability.usage import SQLiteStore, UsageStore, UsageWriter


def usage_store(config: UsageConfig) -> UsageStore | None:
    """The configured usage store; None when usage records are off."""
    if config.backend == "postgres" and config.url is not None:
        return PostgresStore(config.url.reveal(), config.pool)
    return SQLiteStore(config.path) if config.path else None


def usage_writer(config: UsageConfig) -> UsageWriter | None:
    store = usage_store(config)
    if store is None:
        return None
    return UsageWriter(store, retention=config.retention_days * 86400 if config.retention_days else None)


def responses_store(config: UsageConfig, ttl: float) -> ResponsesStore:
    """Beside the usage records; without them (``usage.path: null``), in memory: this process's alone."""
    if config.backend == "postgres" and config.url is not None:
        return PostgresResponsesStore(config.url.reveal(), ttl, config.pool)
    return SQLiteResponsesStore(config.path or ":memory:", ttl)
