"""Usage records: who used which model through which provider, how many tokens, at what cost.

Requests hand records to :class:`UsageWriter`, which keeps them in memory (bounded) and writes them
in batches from a thread of its own, so the hot path never waits on disk or a database. The store is an
interface (:class:`UsageStore`): SQLite here (one host), PostgreSQL in ``postgres`` (every replica).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import math
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar

log = logging.getLogger("localrouter.usage")
T = TypeVar("T")

GROUPS = {
    "client": "client",
    "model": "model",
    "provider": "provider",
    "day": "strftime('%Y-%m-%d', ts, 'unixepoch')",
    "tool": "model_requested",  # an MCP call records its item (tool, prompt or URI) as the model asked for
}
#: the rows a grouping covers, when not all: ``tool`` covers MCP calls only (inference has no tool)
ONLY = {"tool": " AND endpoint = 'mcp'"}
#: a failed request: refused, or a stream that failed after its 200
FAILED = "(status >= 400 OR error_code IS NOT NULL)"
#: the columns :meth:`UsageStore.percentiles` reads, and what it may group them by
TIMINGS = ("duration_ms", "ttfb_ms")
PERCENTILE_GROUPS = {None: "NULL", "model": "model"}
#: answered by an upstream: not from the response cache
UPSTREAM = " AND NOT cached"


class UsageRecord(NamedTuple):
    """One request. A tuple: cheaper to make on the hot path than a slots dataclass, and a row as it is,
    for the store."""

    id: str
    ts: float
    client: str
    endpoint: str
    model_requested: str | None
    model: str | None
    provider: str | None
    stream: bool
    status: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float | None  # None: the model has no price (unknown, not zero)
    duration_ms: float
    ttfb_ms: float | None
    attempts: int
    error_code: str | None = None  # the error's code; a stream that failed after its 200 has one too
    cached: bool = False  # answered from the response cache: no upstream call, cost 0
    saved_usd: float | None = None  # a cached answer: what it cost when first served (None: no price)

    def public(self) -> dict[str, Any]:
        return self._asdict()


class AuditRecord(NamedTuple):
    """One decision someone or something made about a client's access: the firewall's (``kind``
    ``firewall``: a rule denied, asked, or an admin decided) or an operator's (``operator``: a client
    suspended, a target's cooldown reset). Kept beside the usage records, in the same store."""

    id: str
    ts: float
    kind: str  # firewall, operator
    actor: str  # who decided: an admin client's name, or the gateway itself ("rule", "timeout", "secrets")
    client: str | None  # the client the decision is about, if any
    subject: str  # what: a model id, an MCP item, a provider target
    action: str  # deny, allow_once, allow_for, allow_always, suspend, resume, reset_cooldown, ...
    rule: str | None = None  # the firewall rule's match, or the kind of secret found
    held_ms: float | None = None  # how long the request was held for the decision
    detail: str | None = None  # anything else worth showing (never a secret)

    def public(self) -> dict[str, Any]:
        return self._asdict()


AUDIT_KINDS = ("firewall", "operator")


class RequestQuery(NamedTuple):
    """Which records :meth:`UsageStore.requests` lists: each filter that is not None, newest first, from
    just before ``before`` (the (ts, id) of the last record of the previous page)."""

    client: str | None = None
    model: str | None = None  # served it, or asked for
    status: tuple[int, int] | None = None  # an inclusive range
    failed: bool = False  # only failed requests (see FAILED)
    before: tuple[float, str] | None = None
    limit: int = 50

    def where(self, mark: Callable[[], str]) -> tuple[str, list[Any]]:
        """The SQL condition and its arguments; ``mark()`` makes the next placeholder (``?``, ``$n``)."""
        conditions: list[str] = ["TRUE"]
        args: list[Any] = []
        if self.client is not None:
            conditions.append(f"client = {mark()}")
            args.append(self.client)
        if self.model is not None:  # the model that served, or the id asked for (a pool, an alias)
            conditions.append(f"(model = {mark()} OR model_requested = {mark()})")
            args += [self.model, self.model]
        if self.status is not None:
            conditions.append(f"status BETWEEN {mark()} AND {mark()}")
            args += self.status
        if self.failed:
            conditions.append(FAILED)
        if self.before is not None:
            ts, ts2, rid = mark(), mark(), mark()
            conditions.append(f"(ts < {ts} OR (ts = {ts2} AND id < {rid}))")
            args += [self.before[0], self.before[0], self.before[1]]
        return " AND ".join(conditions), args


class StoreError(Exception):
    """The store could not be reached or written: the writer keeps the records and tries again."""


class UsageStore(abc.ABC):
    backend = "sqlite"

    @abc.abstractmethod
    def write(self, records: list[UsageRecord]) -> None:
        """Store ``records`` (one transaction where the store has them)."""

    @abc.abstractmethod
    def get(self, record_id: str) -> UsageRecord | None: ...

    @abc.abstractmethod
    def summary(self, since: float, by: str, until: float = math.inf) -> list[dict[str, Any]]:
        """Totals per ``by`` (a key of GROUPS) of the records from ``since`` until before ``until``."""

    @abc.abstractmethod
    def series(self, since: float, until: float, step: float) -> list[tuple[float, int, int]]:
        """(bucket start, requests, failed) per ``step`` seconds from ``since``, for the buckets that hold
        records."""

    @abc.abstractmethod
    def percentiles(
        self, since: float, until: float, column: str, by: str | None = None, upstream: bool = False
    ) -> dict[str | None, tuple[float, float]]:
        """(p50, p95) of ``column`` (one of TIMINGS; records without it are left out) per ``by`` (a key of
        PERCENTILE_GROUPS); ``upstream``: of the answers an upstream gave only (no response cache hit: a
        target's latency). Nearest rank: the smallest value with at least that share of values at or below
        it, one of the values themselves (PostgreSQL's ``percentile_disc``)."""

    @abc.abstractmethod
    def requests(self, query: RequestQuery) -> list[UsageRecord]:
        """The records ``query`` selects, newest first (by ts, then id)."""

    @abc.abstractmethod
    def purge(self, before: float) -> int:
        """Delete the records (usage and audit) older than ``before``; how many went."""

    @abc.abstractmethod
    def write_audit(self, records: list[AuditRecord]) -> None:
        """Store audit ``records``; one already stored (same id) is left as it is."""

    @abc.abstractmethod
    def audit(self, since: float, kind: str | None = None, limit: int = 100) -> list[AuditRecord]:
        """Audit records from ``since`` on (of one ``kind``, or all), newest first, at most ``limit``."""

    def close(self) -> None:
        return None


_COLUMNS = UsageRecord._fields
# rows per INSERT: 8,000 parameters (SQLite >= 3.32 allows 32,766 per statement, older ones 999)
_ROWS_PER_INSERT = 500 if sqlite3.sqlite_version_info >= (3, 32) else 999 // len(_COLUMNS)
_ROW = f"({', '.join('?' * len(_COLUMNS))})"
_INSERT_ONE = f"INSERT OR REPLACE INTO usage ({', '.join(_COLUMNS)}) VALUES {_ROW}"
AUDIT_COLUMNS = AuditRecord._fields
_AUDIT_ROW = f"({', '.join('?' * len(AUDIT_COLUMNS))})"
_INSERT_AUDIT = f"INSERT OR IGNORE INTO audit ({', '.join(AUDIT_COLUMNS)}) VALUES {_AUDIT_ROW}"
_INSERT_MANY = f"INSERT OR REPLACE INTO usage ({', '.join(_COLUMNS)}) VALUES {', '.join([_ROW] * _ROWS_PER_INSERT)}"


class SQLiteStore(UsageStore):
    """One SQLite file. Writes go through one connection, used from one thread at a time (the writer's,
    or the CLI's); :meth:`get` reads through a second one, so a lookup never waits for a batch being
    written (in WAL mode a reader sees the last commit while a writer's transaction is open)."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS usage (id TEXT PRIMARY KEY, ts REAL NOT NULL, client TEXT NOT NULL, "
                "endpoint TEXT NOT NULL, model_requested TEXT, model TEXT, provider TEXT, stream INTEGER NOT NULL, "
                "status INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, "
                "total_tokens INTEGER NOT NULL, cost_usd REAL, duration_ms REAL NOT NULL, ttfb_ms REAL, "
                "attempts INTEGER NOT NULL, error_code TEXT, cached INTEGER NOT NULL DEFAULT 0, saved_usd REAL) "
                "WITHOUT ROWID"
            )  # rows live in the id index: one b-tree
            self._db.execute("CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts)")  # --since; the only other
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS audit (id TEXT PRIMARY KEY, ts REAL NOT NULL, kind TEXT NOT NULL, "
                "actor TEXT NOT NULL, client TEXT, subject TEXT NOT NULL, action TEXT NOT NULL, rule TEXT, "
                "held_ms REAL, detail TEXT)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts)")
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(usage)")}
            if "error_code" not in columns:  # a file from before error codes were recorded
                self._db.execute("ALTER TABLE usage ADD COLUMN error_code TEXT")
            if "cached" not in columns:  # a file from before the response cache
                self._db.execute("ALTER TABLE usage ADD COLUMN cached INTEGER NOT NULL DEFAULT 0")
                self._db.execute("ALTER TABLE usage ADD COLUMN saved_usd REAL")
        if path == ":memory:":  # a second connection would open a database of its own
            self._reader, self._read_lock = self._db, self._lock
        else:
            self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._reader.execute("PRAGMA query_only=1")
            self._read_lock = threading.Lock()

    def write(self, records: list[UsageRecord]) -> None:
        """One transaction. Full chunks go many rows to a statement (SQLite steps once per statement, not
        once per row, and this thread takes the interpreter lock far less often); the rest one row to a
        statement. Two statement texts in all, so SQLite prepares each once for the connection's life."""
        full = len(records) - len(records) % _ROWS_PER_INSERT
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for start in range(0, full, _ROWS_PER_INSERT):
                    self._db.execute(
                        _INSERT_MANY,
                        [value for record in records[start : start + _ROWS_PER_INSERT] for value in record],
                    )
                if full < len(records):
                    self._db.executemany(_INSERT_ONE, records[full:])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def get(self, record_id: str) -> UsageRecord | None:
        with self._read_lock:
            row = self._reader.execute(f"SELECT {', '.join(_COLUMNS)} FROM usage WHERE id = ?", (record_id,)).fetchone()
        return _record(row) if row else None

    def summary(self, since: float, by: str, until: float = math.inf) -> list[dict[str, Any]]:
        key, order = GROUPS[by], "k" if by == "day" else "SUM(total_tokens) DESC, k"
        sql = (
            f"SELECT {key} AS k, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens), "
            f"SUM(cost_usd), SUM(cost_usd IS NULL AND total_tokens > 0), SUM{FAILED}, SUM(cached), SUM(saved_usd) "
            f"FROM usage WHERE ts >= ? AND ts < ?{ONLY.get(by, '')} GROUP BY k ORDER BY {order}"
        )
        with self._lock:
            rows = self._db.execute(sql, (since, until)).fetchall()
        return [summary_row(by, row) for row in rows]

    def series(self, since: float, until: float, step: float) -> list[tuple[float, int, int]]:
        sql = (
            f"SELECT CAST((ts - ?) / ? AS INTEGER) AS b, COUNT(*), SUM{FAILED} FROM usage "
            "WHERE ts >= ? AND ts < ? GROUP BY b ORDER BY b"
        )
        with self._read_lock:
            rows = self._reader.execute(sql, (since, step, since, until)).fetchall()
        return [(since + b * step, n, failed) for b, n, failed in rows]

    def percentiles(
        self, since: float, until: float, column: str, by: str | None = None, upstream: bool = False
    ) -> dict[str | None, tuple[float, float]]:
        assert column in TIMINGS
        key = PERCENTILE_GROUPS[by]
        # the value at rank ceil(p * n) is the smallest whose rank r has r >= p * n
        sql = (
            "SELECT k, MIN(CASE WHEN r >= 0.5 * n THEN v END), MIN(CASE WHEN r >= 0.95 * n THEN v END) FROM ("
            f"SELECT {key} AS k, {column} AS v, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {column}) AS r, "
            f"COUNT(*) OVER (PARTITION BY {key}) AS n FROM usage WHERE ts >= ? AND ts < ? AND {column} IS NOT NULL"
            f"{UPSTREAM if upstream else ''}"
            ") GROUP BY k"
        )
        with self._read_lock:
            rows = self._reader.execute(sql, (since, until)).fetchall()
        return {k: (p50, p95) for k, p50, p95 in rows}

    def requests(self, query: RequestQuery) -> list[UsageRecord]:
        where, args = query.where(lambda: "?")
        sql = f"SELECT {', '.join(_COLUMNS)} FROM usage WHERE {where} ORDER BY ts DESC, id DESC LIMIT ?"
        with self._read_lock:
            rows = self._reader.execute(sql, (*args, query.limit)).fetchall()
        return [_record(row) for row in rows]

    def purge(self, before: float) -> int:
        with self._lock:
            gone = self._db.execute("DELETE FROM usage WHERE ts < ?", (before,)).rowcount
            return gone + self._db.execute("DELETE FROM audit WHERE ts < ?", (before,)).rowcount

    def write_audit(self, records: list[AuditRecord]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(_INSERT_AUDIT, records)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def audit(self, since: float, kind: str | None = None, limit: int = 100) -> list[AuditRecord]:
        where, args = ("ts >= ? AND kind = ?", (since, kind)) if kind else ("ts >= ?", (since,))
        sql = f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit WHERE {where} ORDER BY ts DESC, id LIMIT ?"
        with self._read_lock:
            rows = self._reader.execute(sql, (*args, limit)).fetchall()
        return [AuditRecord(*row) for row in rows]

    def close(self) -> None:
        with self._read_lock:
            self._reader.close()
        with self._lock:
            self._db.close()


#: a summary row's totals, after its key, in order (``localrouter usage``, the admin API's usage CSV)
SUMMARY_COLUMNS = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "unpriced_requests",
    "errors",
    "cached_requests",
    "saved_usd",
)


def summary_row(by: str, row: Iterable[Any]) -> dict[str, Any]:
    """One row of :meth:`UsageStore.summary` from the database's (key, requests, prompt, completion and total
    tokens, cost, unpriced requests, errors, requests answered from the response cache, the cost those saved),
    the same for every backend."""
    k, n, p, c, t, cost, unpriced, errors, cached, saved = row
    return {
        by: k,
        "requests": n,
        "prompt_tokens": p or 0,
        "completion_tokens": c or 0,
        "total_tokens": t or 0,
        "cost_usd": cost,
        "unpriced_requests": unpriced or 0,
        "errors": errors or 0,
        "cached_requests": cached or 0,
        "saved_usd": saved,  # None: no answer from the cache had a price
    }


def _record(row: Iterable[Any]) -> UsageRecord:
    record = UsageRecord(*row)
    return record._replace(stream=bool(record.stream), cached=bool(record.cached))


class UsageWriter:
    """Takes records on the event loop, writes them in batches from a thread; at most ``max_pending``
    wait in memory (beyond that the oldest are dropped, counted and logged: memory stays bounded).
    A batch the store refuses goes back to the front and is tried again, later each time (backoff up to
    ``max_backoff`` seconds); meanwhile :meth:`health` says why. With ``retention`` (seconds), older
    records are deleted once per ``purge_every``."""

    def __init__(
        self,
        store: UsageStore,
        interval: float = 0.5,
        batch: int = 5000,
        max_pending: int = 100_000,
        retention: float | None = None,
        max_backoff: float = 5.0,
    ) -> None:
        self.store = store
        self._interval, self._batch, self._max_backoff = interval, batch, max_backoff
        self._pending: deque[UsageRecord] = deque(maxlen=max_pending)
        self._by_id: dict[str, UsageRecord] = {}
        self._audit: deque[AuditRecord] = deque(maxlen=max_pending)
        self._retention, self.purge_every, self._next_purge = retention, 3600.0, 0.0
        self.failures = 0  # flushes failed in a row
        self.error: str | None = None  # why the last flush failed; None once one succeeds
        self.read_error: str | None = None  # why the last read failed; None once a read or a write succeeds
        self.dropped_cell: list[float] | None = None  # the metric's counter, when metrics are on
        self.dropped = 0
        self.written = 0
        self.peak_pending = 0
        self._task: asyncio.Task[None] | None = None
        self._flushing: asyncio.Future[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def add(self, record: UsageRecord) -> None:
        if len(self._pending) == self._pending.maxlen:
            self._drop([self._pending[0]])
        self._pending.append(record)
        self._by_id[record.id] = record
        if len(self._pending) > self.peak_pending:
            self.peak_pending = len(self._pending)

    def add_audit(self, record: AuditRecord) -> None:
        """An audit record, written with the next flush (bounded like usage records: past the bound the
        oldest goes, counted as dropped)."""
        if len(self._audit) == self._audit.maxlen:
            self._audit.popleft()
            self._count_dropped(1)
        self._audit.append(record)

    async def audit(self, since: float, kind: str | None = None, limit: int = 100) -> list[AuditRecord]:
        """Audit records, those still waiting included, newest first."""
        waiting = [r for r in self._audit if r.ts >= since and (kind is None or r.kind == kind)]
        stored = await self.read(lambda store: store.audit(since, kind, limit))
        seen = {r.id for r in waiting}
        merged = waiting + [r for r in stored if r.id not in seen]
        return sorted(merged, key=lambda r: r.ts, reverse=True)[:limit]

    async def get(self, record_id: str) -> UsageRecord | None:
        """A record, written or still waiting. The store is read in a thread: a disk read, or a lock
        the store holds, must never stall the event loop."""
        waiting = self._by_id.get(record_id)
        return waiting if waiting is not None else await self.read(lambda store: store.get(record_id))

    async def read(self, query: Callable[[UsageStore], T]) -> T:
        """``query`` run on the store in a thread (a disk read or a database round trip must never stall
        the event loop). A failure is a :class:`StoreError`, and :meth:`health` says so until a read or
        a write succeeds: a store that cannot be read is down even while nothing waits to be written."""
        try:
            found = await asyncio.to_thread(query, self.store)
        except (sqlite3.Error, OSError, StoreError) as exc:
            self.read_error = str(exc) or type(exc).__name__
            raise StoreError(self.read_error) from exc
        self.read_error = None
        return found

    def health(self) -> dict[str, object]:
        """For ``/health``: the store's backend, whether records are being written and read, and if not why."""
        doc: dict[str, object] = {"backend": self.store.backend, "ok": self.error is None and self.read_error is None}
        if self.error is not None:
            doc.update(error=self.error, pending=len(self._pending), dropped=self.dropped)
        if self.read_error is not None:
            doc.update(read_error=self.read_error)
        return doc

    async def flush(self, everything: bool = False) -> None:
        """Write what is waiting now, in transactions of up to ``batch`` records. Records arriving
        meanwhile wait for the next flush (unless ``everything``): written at once, they would make a
        stream of small transactions, each costing as much as a large one. A failed batch goes back to
        the front, and this flush stops: the next one tries again."""
        waiting = len(self._pending)
        while self._pending and (waiting > 0 or everything):
            batch = [self._pending.popleft() for _ in range(min(self._batch, len(self._pending)))]
            waiting -= len(batch)
            try:
                await asyncio.to_thread(self.store.write, batch)
            except (sqlite3.Error, OSError, StoreError) as exc:
                self._failed(batch, exc)
                return
            self.written += len(batch)
            self.failures, self.error, self.read_error = 0, None, None
            for record in batch:
                self._by_id.pop(record.id, None)
        if not await self._flush_audit():
            return
        await self._purge()

    async def _flush_audit(self) -> bool:
        """Write the audit records waiting; on failure they stay (in order) for the next flush."""
        if not self._audit:
            return True
        batch = list(self._audit)
        try:
            await asyncio.to_thread(self.store.write_audit, batch)
        except (sqlite3.Error, OSError, StoreError) as exc:
            self.failures += 1
            self.error = str(exc) or type(exc).__name__
            return False
        for _ in batch:  # those added meanwhile stay
            self._audit.popleft()
        return True

    def _failed(self, batch: list[UsageRecord], exc: Exception) -> None:
        self.failures += 1
        if self.error is None or self.failures % 20 == 0:
            log.error(
                "usage records not written yet (%d waiting; tried %d times): %s",
                len(self._pending) + len(batch),
                self.failures,
                exc,
            )
        self.error = str(exc) or type(exc).__name__
        room = (self._pending.maxlen or len(batch)) - len(self._pending)
        if room < len(batch):  # the oldest go: the bound holds whatever the store does
            self._drop(batch[: len(batch) - room])
            batch = batch[len(batch) - room :]
        self._pending.extendleft(reversed(batch))

    def _drop(self, records: list[UsageRecord]) -> None:
        for record in records:
            self._by_id.pop(record.id, None)
        self._count_dropped(len(records))

    def _count_dropped(self, n: int) -> None:
        if self.dropped_cell is not None:
            self.dropped_cell[0] += n
        before, self.dropped = self.dropped, self.dropped + n
        if before // 1000 != self.dropped // 1000 or before == 0:
            log.warning("usage records dropped: the store does not keep up (%d so far)", self.dropped)

    async def _purge(self) -> None:
        now = time.time()
        if self._retention is None or now < self._next_purge:
            return
        self._next_purge = now + self.purge_every
        try:
            gone = await asyncio.to_thread(self.store.purge, now - self._retention)
        except (sqlite3.Error, OSError, StoreError) as exc:
            log.error("old usage records not deleted: %s", exc)
            return
        if gone:
            log.info("usage records older than the retention deleted: %d", gone)

    async def _loop(self) -> None:
        while True:
            delay = min(self._interval * 2**self.failures, self._max_backoff) if self.failures else self._interval
            await asyncio.sleep(delay)
            self._flushing = asyncio.ensure_future(self.flush())
            await asyncio.shield(self._flushing)  # a cancel stops the loop, never a batch half-written

    async def close(self) -> None:
        """Write what is pending, then close the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._flushing is not None:
            await self._flushing
        await self.flush(everything=True)
        if self._pending or self._audit:
            log.error("usage records lost at exit, the store refusing them: %d", len(self._pending) + len(self._audit))
        self.store.close()


def since_seconds(text: str, now: float | None = None) -> float:
    """``7d``, ``12h``, ``30m``, ``90s`` -> the timestamp that long ago."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"expected a duration like 7d, 12h or 30m, not {text!r}")
    return (time.time() if now is None else now) - int(text[:-1]) * units[text[-1]]
