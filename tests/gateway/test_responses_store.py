"""The store behind ``previous_response_id`` and ``GET /v1/responses/{id}``: a table in the usage
records' SQLite file, one client's rows invisible to another, expiring, and never stalling the loop."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

import pytest

from gateway.config import ResponsesConfig
from gateway.observability.responses_store import SQLiteResponsesStore
from gateway.observability.usage import SQLiteStore
from tests.gateway.test_config import GOOD, parse, problems

RESPONSE = {"id": "resp_1", "object": "response", "output": [{"type": "message", "content": "Grüße ✓"}]}
ITEMS = [{"type": "message", "role": "user", "content": "hi"}, *RESPONSE["output"]]


class Clock:
    """Seconds since the epoch, moved by the test (expiry without sleeping)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "usage.db")


async def test_put_get_delete_in_the_usage_database(db):
    usage = SQLiteStore(db)  # the same file as the usage records: both tables live there
    store = SQLiteResponsesStore(db, ttl=60)
    try:
        await store.put("alice", RESPONSE, ITEMS)
        stored = await store.get("resp_1", "alice")
        assert stored is not None and stored.response == RESPONSE and stored.items == ITEMS
        assert stored.client == "alice" and stored.expires_at == pytest.approx(stored.created_at + 60)
        assert await store.get("resp_2", "alice") is None
        assert await store.delete("resp_1", "alice") is True
        assert await store.get("resp_1", "alice") is None
        assert await store.delete("resp_1", "alice") is False
    finally:
        store.close()
        usage.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"usage", "responses"} <= tables


async def test_another_clients_response_does_not_exist_for_it(db):
    store = SQLiteResponsesStore(db, ttl=60)
    try:
        await store.put("alice", RESPONSE, ITEMS)
        assert await store.get("resp_1", "bob") is None
        assert await store.delete("resp_1", "bob") is False
        assert await store.get("resp_1", "alice") is not None  # bob's delete did nothing
    finally:
        store.close()


async def test_expired_responses_are_not_returned_and_are_purged_on_write(db):
    clock = Clock()
    store = SQLiteResponsesStore(db, ttl=100, purge_every=10, clock=clock)
    try:
        await store.put("alice", RESPONSE, ITEMS)
        clock.now += 99
        assert await store.get("resp_1", "alice") is not None
        clock.now += 1
        assert await store.get("resp_1", "alice") is None
        assert await store.delete("resp_1", "alice") is False
        assert _rows(db) == ["resp_1"]  # expired, still on disk until a write purges
        await store.put("alice", {**RESPONSE, "id": "resp_2"}, ITEMS)
        assert _rows(db) == ["resp_2"]
    finally:
        store.close()


def _rows(db: str) -> list[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM responses ORDER BY id")]


async def test_a_locked_database_does_not_stall_the_event_loop(db):
    """The usage writer (or anything else) holds the file's write lock: a put waits for it in a
    thread while the loop keeps serving."""
    store = SQLiteResponsesStore(db, ttl=60)
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        holder.execute("BEGIN EXCLUSIVE")
        put = asyncio.create_task(store.put("alice", RESPONSE, ITEMS))
        await asyncio.sleep(0.5)
        assert not put.done()  # waiting for the lock
        assert ticks >= 5  # the loop ran meanwhile (tens of ticks on an idle machine)
        holder.execute("COMMIT")
        await asyncio.wait_for(put, 10)
        assert await store.get("resp_1", "alice") is not None
    finally:
        ticker.cancel()
        holder.close()
        store.close()


def test_config_section():
    assert parse(GOOD).responses == ResponsesConfig(ttl=86400.0)
    assert parse(GOOD + "responses: {ttl: 600}\n").responses.ttl == 600.0
    assert "responses.ttl: must be positive" in problems(GOOD + "responses: {ttl: 0}\n")
    assert "responses.ttl: expected a number" in problems(GOOD + "responses: {ttl: forever}\n")
    assert "responses.tll: unknown key" in problems(GOOD + "responses: {tll: 5}\n")
