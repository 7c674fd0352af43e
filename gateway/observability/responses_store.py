"""Stored responses of the Responses endpoint: what ``previous_response_id`` continues and
``GET /v1/responses/{id}`` reads, kept for ``responses.ttl`` seconds in the usage records' database.

A row holds the response object (which repeats the request's settings) and the conversation up to and
including its output (which holds the request's input), so the request itself is not kept. Each row
belongs to the client that made it: to any other client it does not exist. Every read and write runs
in a thread: a slow disk, or the database locked by the usage writer's batch, must never stall the
event loop. Expired rows are never returned, and a write deletes them in passing, at most once per
``purge_every`` seconds.
"""

from __future__ import annotations

import abc
import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway import jsonx

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS responses (id TEXT PRIMARY KEY, client TEXT NOT NULL, created_at REAL NOT NULL, "
    "expires_at REAL NOT NULL, response BLOB NOT NULL, items BLOB NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS responses_expires_at ON responses (expires_at)",  # the purge's
)


@dataclass(frozen=True)
class StoredResponse:
    id: str
    client: str
    created_at: float
    expires_at: float
    response: dict[str, Any]  # the response object as it was answered
    items: list[dict[str, Any]]  # the conversation: earlier items, this request's input, its output


class ResponsesStore(abc.ABC):
    """Where stored responses live (:class:`SQLiteResponsesStore`, or PostgreSQL's for replicas).
    ``clock`` gives the time in seconds since the epoch, as :func:`time.time` does."""

    def __init__(self, ttl: float, purge_every: float = 60.0, clock: Callable[[], float] | None = None) -> None:
        self.ttl, self._purge_every, self._clock = ttl, purge_every, clock or time.time
        self._next_purge = 0.0

    @abc.abstractmethod
    async def put(self, client: str, response: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> None:
        """Keep ``response`` (its ``id`` is the key) and its conversation ``items`` for ``ttl`` seconds."""

    @abc.abstractmethod
    async def get(self, response_id: str, client: str) -> StoredResponse | None:
        """The response, if ``client`` stored it and it has not expired; else None."""

    @abc.abstractmethod
    async def delete(self, response_id: str, client: str) -> bool:
        """Forget the response; False when ``client`` has no such (unexpired) response."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def purge_due(self, now: float) -> bool:
        """Whether a write should delete the expired rows in passing (at most once per ``purge_every``)."""
        if now < self._next_purge:
            return False
        self._next_purge = now + self._purge_every
        return True


class SQLiteResponsesStore(ResponsesStore):
    """The ``responses`` table of one SQLite file (``:memory:`` for one of its own)."""

    def __init__(
        self, path: str, ttl: float, purge_every: float = 60.0, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(ttl, purge_every, clock)
        # the default busy timeout lets a write wait out the usage writer's transaction on the same file
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            if path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            for statement in _SCHEMA:
                self._db.execute(statement)

    async def put(self, client: str, response: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> None:
        await asyncio.to_thread(self._put, client, jsonx.dumps(response), jsonx.dumps(items), str(response["id"]))

    async def get(self, response_id: str, client: str) -> StoredResponse | None:
        return await asyncio.to_thread(self._get, response_id, client)

    async def delete(self, response_id: str, client: str) -> bool:
        return await asyncio.to_thread(self._delete, response_id, client)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _put(self, client: str, response: bytes, items: bytes, response_id: str) -> None:
        now = self._clock()
        with self._lock:
            if self.purge_due(now):
                self._db.execute("DELETE FROM responses WHERE expires_at <= ?", (now,))
            self._db.execute(
                "INSERT INTO responses (id, client, created_at, expires_at, response, items) VALUES (?, ?, ?, ?, ?, ?)",
                (response_id, client, now, now + self.ttl, response, items),
            )

    def _get(self, response_id: str, client: str) -> StoredResponse | None:
        with self._lock:
            row = self._db.execute(
                "SELECT created_at, expires_at, response, items FROM responses "
                "WHERE id = ? AND client = ? AND expires_at > ?",
                (response_id, client, self._clock()),
            ).fetchone()
        if row is None:
            return None
        created_at, expires_at, response, items = row
        return StoredResponse(response_id, client, created_at, expires_at, jsonx.loads(response), jsonx.loads(items))

    def _delete(self, response_id: str, client: str) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM responses WHERE id = ? AND client = ? AND expires_at > ?",
                (response_id, client, self._clock()),
            )
        return cursor.rowcount > 0
