"""Usage records and stored responses in PostgreSQL: one database every replica writes to, so
``localrouter usage`` and a continued Responses conversation see all of them.

asyncpg runs on an event loop of its own, in a thread of the store's (:class:`Database`): the usage
writer hands batches over from its thread as it does to SQLite, the CLI calls the store plainly, and the
Responses endpoint awaits a future without a thread waiting. Whatever asyncpg or the network raises is
translated once, here, into :class:`~gateway.observability.usage.StoreError`.

The schema is versioned: ``MIGRATIONS`` are applied in order, each once, recorded in ``schema_version``,
at the store's first connection (and by ``localrouter db upgrade``), under an advisory lock so replicas
starting together apply each one once. Version 2 adds the audit records (the firewall's decisions and
the operators' actions), on the same :class:`Database`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import math
import threading
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg

from gateway import jsonx
from gateway.observability.responses_store import ResponsesStore, StoredResponse
from gateway.observability.usage import (
    AUDIT_COLUMNS,
    FAILED,
    ONLY,
    PERCENTILE_GROUPS,
    TIMINGS,
    UPSTREAM,
    AuditRecord,
    RequestQuery,
    StoreError,
    UsageRecord,
    UsageStore,
    summary_row,
)

T = TypeVar("T")

#: (version, SQL): applied in order, each once; never edit one that has shipped, add the next
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE usage (
            id text PRIMARY KEY, ts double precision NOT NULL, client text NOT NULL, endpoint text NOT NULL,
            model_requested text, model text, provider text, stream boolean NOT NULL, status integer NOT NULL,
            prompt_tokens bigint NOT NULL, completion_tokens bigint NOT NULL, total_tokens bigint NOT NULL,
            cost_usd double precision, duration_ms double precision NOT NULL, ttfb_ms double precision,
            attempts integer NOT NULL, error_code text);
        CREATE INDEX usage_ts ON usage (ts);
        CREATE INDEX usage_client_ts ON usage (client, ts);
        CREATE INDEX usage_model_ts ON usage (model, ts);
        CREATE INDEX usage_provider_ts ON usage (provider, ts);
        CREATE TABLE responses (
            id text PRIMARY KEY, client text NOT NULL, created_at double precision NOT NULL,
            expires_at double precision NOT NULL, response bytea NOT NULL, items bytea NOT NULL);
        CREATE INDEX responses_expires_at ON responses (expires_at);
        """,
    ),
    (
        2,
        """
        CREATE TABLE audit (
            id text PRIMARY KEY, ts double precision NOT NULL, kind text NOT NULL, actor text NOT NULL,
            client text, subject text NOT NULL, action text NOT NULL, rule text, held_ms double precision,
            detail text);
        CREATE INDEX audit_ts ON audit (ts);
        CREATE INDEX audit_kind_ts ON audit (kind, ts);
        """,
    ),
    (
        3,
        """
        ALTER TABLE usage ADD COLUMN cached boolean NOT NULL DEFAULT false, ADD COLUMN saved_usd double precision;
        """,
    ),
)
_LOCK_KEY = 0x6C726F7574  # the advisory lock migrations hold: one replica migrates, the others wait
_CONNECT_TIMEOUT = 5.0
_COMMAND_TIMEOUT = 15.0
_FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


async def migrate(conn: asyncpg.Connection) -> int:
    """Apply the migrations this database lacks; the schema's version after."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL "
            "DEFAULT now())"
        )
        current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
        for version, sql in MIGRATIONS:
            if version > current:
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
                current = version
        return int(current)


class Database:
    """A connection pool on an event loop in a thread of its own. The pool is made at first use, not
    at start: a database down when the gateway starts makes it degraded, not dead."""

    def __init__(self, url: str, pool: int) -> None:
        self._url, self._size = url, pool
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="localrouter-postgres", daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the database's loop and wait for it (from any thread but that loop's)."""
        return self.submit(coro).result()

    async def wait(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the database's loop; the caller's loop awaits it without a thread waiting."""
        return await asyncio.wrap_future(self.submit(coro))

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(self._guarded(coro), self._loop)

    async def pool(self) -> asyncpg.Pool:
        async with self._opening:  # two first calls at once make one pool
            if self._pool is None:
                self._pool = await self._open()
        return self._pool

    async def _open(self) -> asyncpg.Pool:
        pool = await asyncpg.create_pool(
            self._url, min_size=1, max_size=self._size, timeout=_CONNECT_TIMEOUT, command_timeout=_COMMAND_TIMEOUT
        )
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except BaseException:
            pool.terminate()  # the next try opens a new one: this one must not linger
            raise
        return pool

    async def _guarded(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT + _COMMAND_TIMEOUT):
                return await coro
        except _FAILURES as exc:
            # the message only: asyncpg's never holds the password, and the URL is not repeated
            raise StoreError(f"PostgreSQL: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                self.call(asyncio.wait_for(pool.close(), _CONNECT_TIMEOUT))
            except StoreError:
                self._loop.call_soon_threadsafe(pool.terminate)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


_COLUMNS = UsageRecord._fields
_TYPES = (
    "text",
    "float8",
    "text",
    "text",
    "text",
    "text",
    "text",
    "bool",
    "int4",
    "int8",
    "int8",
    "int8",
    "float8",
    "float8",
    "float8",
    "int4",
    "text",
    "bool",
    "float8",
)
# one statement per batch, one array per column; a batch retried after a lost reply inserts nothing twice
_INSERT = (
    f"INSERT INTO usage ({', '.join(_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(_TYPES))
    + ") ON CONFLICT (id) DO NOTHING"
)
_INSERT_AUDIT = (
    f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(
        f"${i + 1}::{t}[]" for i, t in enumerate(("text", "float8", "text", "text", "text", "text", "text", "text"))
    )
    + ", $9::float8[], $10::text[]) ON CONFLICT (id) DO NOTHING"
)
_DAY = "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
_GROUPS = {"client": "client", "model": "model", "provider": "provider", "day": _DAY, "tool": "model_requested"}


class PostgresStore(UsageStore):
    """The ``usage`` table. Methods block their caller (the writer's thread, the CLI) until done."""

    backend = "postgres"

    def __init__(self, url: str, pool: int = 10) -> None:
        self.db = Database(url, pool)

    def write(self, records: list[UsageRecord]) -> None:
        self.db.call(self._write(records))

    def get(self, record_id: str) -> UsageRecord | None:
        return self.db.call(self._get(record_id))

    def summary(self, since: float, by: str, until: float = math.inf) -> list[dict[str, Any]]:
        return self.db.call(self._summary(since, by, until))

    def series(self, since: float, until: float, step: float) -> list[tuple[float, int, int]]:
        return self.db.call(self._series(since, until, step))

    def percentiles(
        self, since: float, until: float, column: str, by: str | None = None, upstream: bool = False
    ) -> dict[str | None, tuple[float, float]]:
        return self.db.call(self._percentiles(since, until, column, by, upstream))

    def requests(self, query: RequestQuery) -> list[UsageRecord]:
        return self.db.call(self._requests(query))

    def purge(self, before: float) -> int:
        return self.db.call(self._purge(before))

    def write_audit(self, records: list[AuditRecord]) -> None:
        self.db.call(self._write_audit(records))

    def audit(self, since: float, kind: str | None = None, limit: int = 100) -> list[AuditRecord]:
        return self.db.call(self._audit(since, kind, limit))

    def close(self) -> None:
        self.db.close()

    async def _write_audit(self, records: list[AuditRecord]) -> None:
        await self._insert(_INSERT_AUDIT, records)

    async def _insert(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """One statement for the whole batch: one array per column (``sql`` unnests them)."""
        pool = await self.db.pool()
        await pool.execute(sql, *(list(column) for column in zip(*rows, strict=True)))

    async def _audit(self, since: float, kind: str | None, limit: int) -> list[AuditRecord]:
        pool = await self.db.pool()
        rows = await pool.fetch(
            f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit WHERE ts >= $1 AND ($2::text IS NULL OR kind = $2) "
            "ORDER BY ts DESC, id LIMIT $3",
            since,
            kind,
            limit,
        )
        return [AuditRecord(*row.values()) for row in rows]

    async def _write(self, records: list[UsageRecord]) -> None:
        await self._insert(_INSERT, records)

    async def _get(self, record_id: str) -> UsageRecord | None:
        pool = await self.db.pool()
        row = await pool.fetchrow(f"SELECT {', '.join(_COLUMNS)} FROM usage WHERE id = $1", record_id)
        return UsageRecord(*row.values()) if row is not None else None

    async def _summary(self, since: float, by: str, until: float) -> list[dict[str, Any]]:
        pool = await self.db.pool()
        order = "k" if by == "day" else "sum(total_tokens) DESC, k"
        rows = await pool.fetch(
            f"SELECT {_GROUPS[by]} AS k, count(*), sum(prompt_tokens)::bigint, sum(completion_tokens)::bigint, "
            "sum(total_tokens)::bigint, sum(cost_usd), count(*) FILTER (WHERE cost_usd IS NULL AND total_tokens > 0), "
            f"count(*) FILTER (WHERE {FAILED}), count(*) FILTER (WHERE cached), sum(saved_usd) "
            f"FROM usage WHERE ts >= $1 AND ts < $2{ONLY.get(by, '')} GROUP BY k ORDER BY {order}",
            since,
            until,
        )
        return [summary_row(by, row.values()) for row in rows]

    async def _series(self, since: float, until: float, step: float) -> list[tuple[float, int, int]]:
        pool = await self.db.pool()
        rows = await pool.fetch(
            f"SELECT floor((ts - $1) / $2)::bigint AS b, count(*), count(*) FILTER (WHERE {FAILED}) FROM usage "
            "WHERE ts >= $1 AND ts < $3 GROUP BY b ORDER BY b",
            since,
            step,
            until,
        )
        return [(since + b * step, n, failed) for b, n, failed in (row.values() for row in rows)]

    async def _percentiles(
        self, since: float, until: float, column: str, by: str | None, upstream: bool
    ) -> dict[str | None, tuple[float, float]]:
        assert column in TIMINGS
        pool = await self.db.pool()
        key = PERCENTILE_GROUPS[by]
        rows = await pool.fetch(
            f"SELECT {key} AS k, percentile_disc(0.5) WITHIN GROUP (ORDER BY {column}), "
            f"percentile_disc(0.95) WITHIN GROUP (ORDER BY {column}) FROM usage "
            f"WHERE ts >= $1 AND ts < $2 AND {column} IS NOT NULL{UPSTREAM if upstream else ''} GROUP BY 1",
            since,
            until,
        )
        return {k: (p50, p95) for k, p50, p95 in (row.values() for row in rows)}

    async def _requests(self, query: RequestQuery) -> list[UsageRecord]:
        pool = await self.db.pool()
        marks = itertools.count(1)
        where, args = query.where(lambda: f"${next(marks)}")
        rows = await pool.fetch(
            f"SELECT {', '.join(_COLUMNS)} FROM usage WHERE {where} ORDER BY ts DESC, id DESC LIMIT ${next(marks)}",
            *args,
            query.limit,
        )
        return [UsageRecord(*row.values()) for row in rows]

    async def _purge(self, before: float) -> int:
        pool = await self.db.pool()
        status = await pool.execute("DELETE FROM usage WHERE ts < $1", before)
        audit = await pool.execute("DELETE FROM audit WHERE ts < $1", before)
        return int(status.split()[-1]) + int(audit.split()[-1])


class PostgresResponsesStore(ResponsesStore):
    """The ``responses`` table: every replica's stored responses, so a conversation continues on any."""

    def __init__(self, url: str, ttl: float, pool: int = 10, purge_every: float = 60.0, clock: Any = None) -> None:
        super().__init__(ttl, purge_every, clock)
        self.db = Database(url, pool)

    async def put(self, client: str, response: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> None:
        await self.db.wait(self._put(client, jsonx.dumps(response), jsonx.dumps(items), str(response["id"])))

    async def get(self, response_id: str, client: str) -> StoredResponse | None:
        return await self.db.wait(self._get(response_id, client))

    async def delete(self, response_id: str, client: str) -> bool:
        return await self.db.wait(self._delete(response_id, client))

    def close(self) -> None:
        self.db.close()

    async def _put(self, client: str, response: bytes, items: bytes, response_id: str) -> None:
        pool, now = await self.db.pool(), self._clock()
        if self.purge_due(now):
            await pool.execute("DELETE FROM responses WHERE expires_at <= $1", now)
        await pool.execute(
            "INSERT INTO responses (id, client, created_at, expires_at, response, items) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            response_id,
            client,
            now,
            now + self.ttl,
            response,
            items,
        )

    async def _get(self, response_id: str, client: str) -> StoredResponse | None:
        pool = await self.db.pool()
        row = await pool.fetchrow(
            "SELECT created_at, expires_at, response, items FROM responses "
            "WHERE id = $1 AND client = $2 AND expires_at > $3",
            response_id,
            client,
            self._clock(),
        )
        if row is None:
            return None
        created_at, expires_at, response, items = row.values()
        return StoredResponse(response_id, client, created_at, expires_at, jsonx.loads(response), jsonx.loads(items))

    async def _delete(self, response_id: str, client: str) -> bool:
        pool = await self.db.pool()
        status = await pool.execute(
            "DELETE FROM responses WHERE id = $1 AND client = $2 AND expires_at > $3",
            response_id,
            client,
            self._clock(),
        )
        return status != "DELETE 0"


def upgrade(url: str) -> int:
    """``localrouter db upgrade``: apply the migrations; the schema's version after."""

    async def run() -> int:
        conn = await asyncpg.connect(url, timeout=_CONNECT_TIMEOUT)
        try:
            return await migrate(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except _FAILURES as exc:
        raise StoreError(f"PostgreSQL: {type(exc).__name__}: {exc}") from exc
