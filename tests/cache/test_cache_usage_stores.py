"""Cached answers in the usage records of both stores, and the schema brought up to date on an existing
SQLite file or PostgreSQL database."""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg

from gateway.config.observability import UsageConfig
from gateway.config.reader import Secret
from gateway.observability.postgres import MIGRATIONS, PostgresStore, migrate
from gateway.observability.stores import usage_store
from gateway.observability.usage import SQLiteStore
from tests.gateway.test_stores import T0, call, config, record, store  # noqa: F401 (fixtures)

HIT = record(2, cached=True, cost_usd=0.0, saved_usd=0.25, attempts=0)


async def test_a_cached_record_round_trips(store) -> None:  # noqa: F811 (the fixture)
    await call(store.write, [record(1), HIT])
    assert await call(store.get, HIT.id) == HIT
    assert (await call(store.get, "req-alice-1")).cached is False


def test_an_sqlite_file_from_before_the_cache_gains_its_columns(tmp_path) -> None:
    path = str(tmp_path / "old.db")
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE usage (id TEXT PRIMARY KEY, ts REAL NOT NULL, client TEXT NOT NULL, endpoint TEXT NOT NULL, "
        "model_requested TEXT, model TEXT, provider TEXT, stream INTEGER NOT NULL, status INTEGER NOT NULL, "
        "prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, total_tokens INTEGER NOT NULL, "
        "cost_usd REAL, duration_ms REAL NOT NULL, ttfb_ms REAL, attempts INTEGER NOT NULL, error_code TEXT) "
        "WITHOUT ROWID"
    )
    db.execute(
        "INSERT INTO usage VALUES ('old', ?, 'alice', 'chat', 'm', 'm', 'p', 0, 200, 1, 1, 2, 0.1, 1, NULL, 1, NULL)",
        (T0,),
    )
    db.commit()
    db.close()
    old = SQLiteStore(path)
    try:
        assert old.get("old").cached is False  # an old row: not cached
        old.write([HIT])
        assert old.get(HIT.id) == HIT
    finally:
        old.close()


async def test_a_postgres_database_at_version_1_is_migrated(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(
            "CREATE TABLE schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await conn.execute(MIGRATIONS[0][1])
        await conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        assert await migrate(conn) == MIGRATIONS[-1][0]
    finally:
        await conn.close()
    made = usage_store(UsageConfig(backend="postgres", url=Secret(pg_url)))
    assert isinstance(made, PostgresStore)
    try:
        await call(made.write, [HIT])
        assert await call(made.get, HIT.id) == HIT
    finally:
        await asyncio.to_thread(made.close)
