"""One suite for both stores of usage records and stored responses: a SQLite file and a real PostgreSQL
server (tests/pgserver.py). Whatever one backend answers, the other answers the same."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gateway.config.observability import UsageConfig
from gateway.config.reader import Secret
from gateway.observability.metrics import USAGE_DROPPED, Metrics
from gateway.observability.postgres import PostgresStore
from gateway.observability.responses_store import ResponsesStore
from gateway.observability.stores import responses_store, usage_store
from gateway.observability.usage import AuditRecord, RequestQuery, UsageRecord, UsageStore, UsageWriter
from tests.gateway.test_config import ENV, GOOD, parse, problems
from tests.redisserver import free_port

DAY = 86400.0
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def record(n: int, client: str = "alice", ts: float = T0, **fields: Any) -> UsageRecord:
    base = UsageRecord(
        f"req-{client}-{n}", ts, client, "chat", "fast", "gpt-x", "openai", False, 200, 10, 5, 15, 0.25, 12.5, None, 1
    )
    return base._replace(**fields)


@pytest.fixture(params=["sqlite", "postgres"])
def config(request: pytest.FixtureRequest, tmp_path) -> UsageConfig:
    if request.param == "sqlite":
        return UsageConfig(path=str(tmp_path / "usage.db"))
    url = request.getfixturevalue("pg_url")
    return UsageConfig(backend="postgres", url=Secret(url), pool=2)


@pytest.fixture
async def store(config: UsageConfig) -> AsyncIterator[UsageStore]:
    made = usage_store(config)
    assert made is not None
    yield made
    await asyncio.to_thread(made.close)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def responses(config: UsageConfig) -> AsyncIterator[tuple[ResponsesStore, Clock]]:
    clock = Clock()
    made = responses_store(config, ttl=100)
    made._clock = clock
    yield made, clock
    await asyncio.to_thread(made.close)


def call(fn: Callable[..., Any], *args: Any) -> Any:
    """Store methods block (the writer calls them from its thread): from a test, in a thread too."""
    return asyncio.to_thread(fn, *args)


async def test_write_get_and_a_batch_written_twice_counts_once(store: UsageStore) -> None:
    batch = [record(1), record(2, cost_usd=None, stream=True, ttfb_ms=3.5, error_code="upstream_error")]
    await call(store.write, batch)
    await call(store.write, batch)  # a retry after a reply that was lost
    assert await call(store.get, "req-alice-2") == batch[1]
    assert await call(store.get, "req-alice-1") == batch[0]
    assert await call(store.get, "nope") is None
    [row] = await call(store.summary, T0 - 1, "client")
    assert row == {
        "client": "alice",
        "requests": 2,
        "prompt_tokens": 20,
        "completion_tokens": 10,
        "total_tokens": 30,
        "cost_usd": 0.25,
        "unpriced_requests": 1,
        "errors": 1,
        "cached_requests": 0,
        "saved_usd": None,
    }


async def test_summary_counts_answers_from_the_cache_and_what_they_saved(store: UsageStore) -> None:
    hit = {"cached": True, "cost_usd": 0.0, "attempts": 0}
    records = [record(1), record(2, **hit, saved_usd=0.25), record(3, **hit, saved_usd=0.5)]
    records += [record(4, **hit, saved_usd=None, model="gpt-free")]  # its model has no price
    records += [record(1, "bob")]
    await call(store.write, records)
    rows = {r["client"]: r for r in await call(store.summary, T0, "client")}
    assert (rows["alice"]["requests"], rows["alice"]["cached_requests"]) == (4, 3)
    assert rows["alice"]["saved_usd"] == pytest.approx(0.75) and rows["alice"]["cost_usd"] == pytest.approx(0.25)
    assert (rows["bob"]["cached_requests"], rows["bob"]["saved_usd"]) == (0, None)
    by_model = {r["model"]: r for r in await call(store.summary, T0, "model")}
    assert (by_model["gpt-free"]["cached_requests"], by_model["gpt-free"]["saved_usd"]) == (1, None)


async def test_summary_groups_and_since(store: UsageStore) -> None:
    records = [record(i, "alice", T0 + i) for i in range(3)]
    records += [record(i, "bob", T0 + DAY + i, total_tokens=100, model="gpt-y", provider="azure") for i in range(2)]
    await call(store.write, records)
    by_client = await call(store.summary, T0, "client")
    assert [(r["client"], r["requests"], r["total_tokens"]) for r in by_client] == [("bob", 2, 200), ("alice", 3, 45)]
    by_model = await call(store.summary, T0, "model")
    assert [(r["model"], r["requests"]) for r in by_model] == [("gpt-y", 2), ("gpt-x", 3)]
    by_provider = await call(store.summary, T0, "provider")
    assert [r["provider"] for r in by_provider] == ["azure", "openai"]
    by_day = await call(store.summary, T0, "day")
    assert [(r["day"], r["requests"]) for r in by_day] == [("2023-11-14", 3), ("2023-11-15", 2)]
    later = await call(store.summary, T0 + DAY, "client")
    assert [r["client"] for r in later] == ["bob"]


async def test_retention_deletes_only_older_records(store: UsageStore) -> None:
    await call(store.write, [record(1, ts=T0 - 40 * DAY), record(2, ts=T0 - 10 * DAY), record(3, ts=T0)])
    assert await call(store.purge, T0 - 30 * DAY) == 1
    assert await call(store.get, "req-alice-1") is None
    assert await call(store.get, "req-alice-2") is not None
    assert await call(store.purge, T0 - 30 * DAY) == 0


async def test_the_writer_applies_the_retention(config: UsageConfig) -> None:
    made = usage_store(config)
    assert made is not None
    writer = UsageWriter(made, retention=30 * DAY)
    writer.add(record(1, ts=time.time() - 31 * DAY))
    writer.add(record(2, ts=time.time()))
    await writer.flush()  # written, then the old one purged
    assert await call(made.get, "req-alice-1") is None
    assert await call(made.get, "req-alice-2") is not None
    assert writer.health() == {"backend": config.backend, "ok": True}
    await writer.close()


RESPONSE = {"id": "resp_1", "object": "response", "output": [{"type": "message", "content": "Grüße ✓"}]}
ITEMS = [{"type": "message", "role": "user", "content": "hi"}, *RESPONSE["output"]]


async def test_summary_until_series_and_percentiles(store: UsageStore) -> None:
    batch = [
        record(i, ts=T0 + i * 10, duration_ms=float(i), ttfb_ms=float(100 + i) if i % 2 else None) for i in range(1, 21)
    ]
    batch.append(record(21, client="bob", ts=T0 + 95, model="gpt-y", status=503, duration_ms=1000.0))
    batch.append(record(22, ts=T0 + 5, stream=True, error_code="stream_interrupted", duration_ms=0.5))
    await call(store.write, batch)
    rows = {r["client"]: r for r in await call(store.summary, T0, "client", T0 + 100)}  # [T0, T0 + 100)
    assert rows["alice"]["requests"] == 10 and rows["alice"]["errors"] == 1  # records 1..9 and 22
    assert rows["bob"]["requests"] == 1 and rows["bob"]["errors"] == 1
    assert (await call(store.summary, T0, "client"))[0]["requests"] == 21
    series = await call(store.series, T0, T0 + 200, 60.0)
    # [0, 60): 10..50 and 5 | [60, 120): 60..110 and bob's 95 | [120, 180) | [180, 200): 180, 190
    assert series == [(T0, 6, 1), (T0 + 60, 7, 1), (T0 + 120, 6, 0), (T0 + 180, 2, 0)]
    # nearest rank: p50 of 22 values is the 11th, p95 the 21st (ceil(20.9))
    durations = sorted(r.duration_ms for r in batch)
    assert await call(store.percentiles, T0, T0 + 1000, "duration_ms") == {None: (durations[10], durations[20])}
    ttfbs = sorted(r.ttfb_ms for r in batch if r.ttfb_ms is not None)  # ten: the 5th and the 10th
    assert await call(store.percentiles, T0, T0 + 1000, "ttfb_ms") == {None: (ttfbs[4], ttfbs[9])}
    by_model = await call(store.percentiles, T0, T0 + 1000, "duration_ms", "model")
    assert by_model == {"gpt-x": (10.0, 19.0), "gpt-y": (1000.0, 1000.0)}
    assert await call(store.percentiles, T0 + 5000, T0 + 6000, "duration_ms") == {}


async def test_requests_filter_and_page_newest_first(store: UsageStore) -> None:
    batch = [record(i, ts=T0 + i // 2, status=200 if i % 3 else 429) for i in range(10)]  # pairs share a ts
    batch += [record(1, client="bob", ts=T0 + 3, model="gpt-y"), record(2, client="bob", ts=T0 + 1, error_code="x")]
    await call(store.write, batch)
    everything = sorted(batch, key=lambda r: (r.ts, r.id), reverse=True)
    assert await call(store.requests, RequestQuery(limit=100)) == everything
    pages, before = [], None
    while True:
        page = await call(store.requests, RequestQuery(before=before, limit=5))
        pages += page
        if len(page) < 5:
            break
        before = (page[-1].ts, page[-1].id)
    assert pages == everything
    assert [r.id for r in await call(store.requests, RequestQuery(client="bob"))] == ["req-bob-1", "req-bob-2"]
    assert [r.id for r in await call(store.requests, RequestQuery(model="gpt-y"))] == ["req-bob-1"]
    limited = await call(store.requests, RequestQuery(status=(400, 499)))
    assert {r.id for r in limited} == {f"req-alice-{i}" for i in (0, 3, 6, 9)}
    failed = await call(store.requests, RequestQuery(failed=True, client="bob"))
    assert [r.id for r in failed] == ["req-bob-2"]


def audit(n: int, ts: float = T0, kind: str = "firewall", **fields: Any) -> AuditRecord:
    base = AuditRecord(f"aud-{n}", ts, kind, "ops", "alice", "files__delete_all", "deny", "files__delete_*", 1500.0)
    return base._replace(**fields)


async def test_audit_records_newest_first_by_kind_and_written_once(store: UsageStore) -> None:
    firewall = [audit(1), audit(2, ts=T0 + 5, action="allow_once", held_ms=None, detail="approved")]
    operator = [audit(3, ts=T0 + 3, kind="operator", client="bob", subject="openai/gpt-x", action="reset_cooldown")]
    await call(store.write_audit, firewall + operator)
    await call(store.write_audit, firewall)  # a retry after a reply that was lost
    assert await call(store.audit, T0 - 1) == [firewall[1], operator[0], firewall[0]]
    assert await call(store.audit, T0 - 1, "operator") == operator
    assert await call(store.audit, T0 + 1, "firewall") == [firewall[1]]
    assert await call(store.audit, T0 - 1, None, 1) == [firewall[1]]
    assert await call(store.purge, T0 + 4) == 2  # retention covers the audit too
    assert await call(store.audit, 0) == [firewall[1]]


async def test_the_writer_serves_audit_records_before_and_after_they_are_written(config: UsageConfig) -> None:
    made = usage_store(config)
    assert made is not None
    writer = UsageWriter(made)
    try:
        writer.add_audit(audit(1, kind="operator", action="suspend"))
        assert [r.id for r in await writer.audit(0)] == ["aud-1"]  # waiting, not yet written
        await writer.flush()
        writer.add_audit(audit(2, ts=T0 + 1))
        assert [r.id for r in await writer.audit(0)] == ["aud-2", "aud-1"]
        assert [r.id for r in await writer.audit(0, "operator")] == ["aud-1"]
    finally:
        await writer.close()
    reopened = usage_store(config)
    assert reopened is not None
    try:
        assert [r.id for r in await call(reopened.audit, 0)] == ["aud-2", "aud-1"]  # close wrote what waited
    finally:
        await call(reopened.close)


async def test_responses_put_get_delete(responses: tuple[ResponsesStore, Clock]) -> None:
    store, _ = responses
    await store.put("alice", RESPONSE, ITEMS)
    stored = await store.get("resp_1", "alice")
    assert stored is not None and stored.response == RESPONSE and stored.items == ITEMS
    assert stored.created_at == T0 and stored.expires_at == T0 + 100
    assert await store.get("resp_2", "alice") is None
    assert await store.delete("resp_1", "alice") is True
    assert await store.get("resp_1", "alice") is None
    assert await store.delete("resp_1", "alice") is False


async def test_responses_of_another_client_do_not_exist(responses: tuple[ResponsesStore, Clock]) -> None:
    store, _ = responses
    await store.put("alice", RESPONSE, ITEMS)
    assert await store.get("resp_1", "bob") is None
    assert await store.delete("resp_1", "bob") is False
    assert await store.get("resp_1", "alice") is not None


async def test_responses_expire(responses: tuple[ResponsesStore, Clock]) -> None:
    store, clock = responses
    await store.put("alice", RESPONSE, ITEMS)
    clock.now += 99
    assert await store.get("resp_1", "alice") is not None
    clock.now += 1
    assert await store.get("resp_1", "alice") is None
    assert await store.delete("resp_1", "alice") is False
    clock.now += 1000  # the next write purges the expired row: its id is free again
    await store.put("alice", RESPONSE, ITEMS)
    assert await store.get("resp_1", "alice") is not None


def test_usage_config_backends() -> None:
    url = "postgresql://lr:pw-in-the-url@127.0.0.1:5432/lr"
    cfg = parse(GOOD + "usage: {backend: postgres, url: '${PG}', pool: 4, retention_days: 90}\n", {**ENV, "PG": url})
    assert cfg.usage.backend == "postgres" and cfg.usage.url is not None and cfg.usage.url.reveal() == url
    assert (cfg.usage.pool, cfg.usage.retention_days) == (4, 90)
    assert "pw-in-the-url" not in repr(cfg)
    assert parse(GOOD).usage.backend == "sqlite"
    assert problems(GOOD + "usage: {backend: postgres}\n") == ["usage.url: required with backend postgres"]
    assert problems(GOOD + "usage: {backend: mysql, retention_days: 0, pool: x, colour: 1}\n") == [
        "usage.colour: unknown key",
        "usage.backend: expected sqlite or postgres",
        "usage.pool: expected an integer",
        "usage.retention_days: must be positive",
    ]
    assert problems(GOOD + "usage: {backend: postgres, url: 'mysql://a:secretpw@h/d'}\n") == [
        "usage.url: expected a postgresql:// URL"
    ]


async def test_records_past_the_bound_are_dropped_and_counted_while_the_database_is_down() -> None:
    store = PostgresStore(f"postgresql://lr:pw@127.0.0.1:{free_port()}/lr")  # nothing listens there
    writer = UsageWriter(store, max_pending=5)
    metrics = Metrics()
    writer.dropped_cell = metrics.cell(USAGE_DROPPED)
    for i in range(8):
        writer.add(record(i))
    await writer.flush()
    health = writer.health()
    assert health["ok"] is False and health["pending"] == 5 and health["dropped"] == 3
    assert "PostgreSQL" in str(health["error"]) and "pw" not in str(health["error"]).replace("PostgreSQL", "")
    assert await writer.get("req-alice-7") == record(7)  # still waiting, still readable
    assert b"localrouter_usage_records_dropped_total 3.0" in metrics.render()
    assert writer.failures == 1
    await writer.close()  # the last flush fails too: logged, nothing hangs
