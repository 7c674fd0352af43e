"""Metrics, access log, request ids, usage records and the usage CLI."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.observability import metrics as m
from gateway.observability.observer import Observer
from gateway.observability.usage import SQLiteStore, UsageRecord, UsageWriter
from tests.conftest import ALICE, BOB, bearer, sse_events, standard_config
from tests.fakes.openai_upstream import Script
from tests.procs import run

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
PRICES = {"gpt-4o-mini": {"input_per_1m": 1000, "output_per_1m": 2000}}  # 7 in + 5 out = 0.017 USD


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def priced(upstreams) -> dict:
    """The standard config with a price for the primary's gpt-4o-mini."""
    data = standard_config(*upstreams)
    data["providers"][0]["prices"] = PRICES
    return data


async def post(http, gw, body=CHAT, key=ALICE, headers=None):
    async with http.post(gw.url + "/v1/chat/completions", json=body, headers={**bearer(key), **(headers or {})}) as r:
        data = await sse_events(r) if body.get("stream") and r.status == 200 else await r.json()
        return r.status, r.headers, data


async def test_metrics_after_a_known_sequence(upstreams, start_gateway, http):
    primary, backup = upstreams
    gw = await start_gateway(priced(upstreams))
    for _ in range(2):
        assert (await post(http, gw))[0] == 200
    assert (await post(http, gw, {**CHAT, "stream": True}))[0] == 200
    primary.queue(Script(status=500))
    assert (await post(http, gw))[0] == 200  # served by backup
    assert (await post(http, gw, {**CHAT, "model": "openai/nope"}))[0] == 404
    assert (await post(http, gw, key="lr-wrong-key-0123456789abcdef"))[0] == 401
    async with http.get(gw.url + "/metrics") as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"
        found = samples(await resp.text())
    req = "localrouter_requests_total"
    assert (
        value(found, req, endpoint="chat", status="200", client="alice", model="openai/gpt-4o-mini", provider="openai")
        == 3
    )
    assert (
        value(found, req, endpoint="chat", status="200", client="alice", model="backup/gpt-4o-mini", provider="backup")
        == 1
    )
    assert value(found, req, endpoint="chat", status="404", client="alice", model="none", provider="none") == 1
    assert value(found, req, endpoint="chat", status="401", client="none", model="none", provider="none") == 1
    # the raw model string of the 404 never became a label
    assert not any(("openai/nope" in str(labels)) for _, labels in found)
    tokens = "localrouter_tokens_total"
    assert value(found, tokens, client="alice", model="openai/gpt-4o-mini", provider="openai", direction="input") == 21
    assert value(found, tokens, client="alice", model="openai/gpt-4o-mini", provider="openai", direction="output") == 15
    assert value(found, tokens, client="alice", model="backup/gpt-4o-mini", provider="backup", direction="input") == 7
    assert value(
        found, "localrouter_cost_usd_total", client="alice", model="openai/gpt-4o-mini", provider="openai"
    ) == pytest.approx(3 * 0.017)
    assert (
        value(found, "localrouter_cost_usd_total", client="alice", model="backup/gpt-4o-mini", provider="backup") == 0
    )  # no price: unknown, not counted as zero cost
    assert value(found, "localrouter_fallbacks_total", target="openai/gpt-4o-mini", reason="unavailable") == 1
    assert value(found, "localrouter_upstream_errors_total", provider="openai", kind="unavailable") == 1
    assert value(found, "localrouter_request_duration_seconds_count", endpoint="chat", stream="false") == 5
    assert value(found, "localrouter_request_duration_seconds_count", endpoint="chat", stream="true") == 1
    assert value(found, "localrouter_time_to_first_byte_seconds_count", endpoint="chat") == 1
    assert value(found, "localrouter_overhead_seconds_count", endpoint="chat") == 3
    assert value(found, "localrouter_streams_in_flight") == 0


async def test_rate_limit_rejections_are_counted(upstreams, start_gateway, http):
    data = standard_config(*upstreams)
    data["strategies"][0]["rate_limits"] = [{"requests": 1, "per": "minute"}]
    gw = await start_gateway(data)
    statuses = [(await post(http, gw))[0] for _ in range(3)]
    assert statuses == [200, 429, 429]
    async with http.get(gw.url + "/metrics") as resp:
        found = samples(await resp.text())
    assert value(found, "localrouter_rate_limited_total", client="alice") == 2


async def test_metrics_token_and_switch(upstreams, start_gateway, http):
    gw = await start_gateway(standard_config(*upstreams, metrics={"token": "metrics-token-0123456789"}))
    async with http.get(gw.url + "/metrics") as resp:
        assert resp.status == 401
    async with http.get(gw.url + "/metrics", headers=bearer("metrics-token-0123456789")) as resp:
        assert resp.status == 200 and "localrouter_requests_total" in await resp.text()
    off = await start_gateway(standard_config(*upstreams, metrics={"enabled": False}))
    async with http.get(off.url + "/metrics") as resp:
        assert resp.status == 404


def test_histogram_buckets_are_inclusive_and_cumulative():
    metrics = m.Metrics()
    cell = metrics.cell(m.DURATION, "chat", "false")
    for seconds in (0.005, 0.0051, 0.01, 400.0):  # on a bound, just above it, on the next, above all
        m.observe_into(cell, m.LATENCY_BUCKETS, seconds)
    found = samples(metrics.render().decode())
    bucket = "localrouter_request_duration_seconds_bucket"
    assert value(found, bucket, endpoint="chat", stream="false", le="0.005") == 1
    assert value(found, bucket, endpoint="chat", stream="false", le="0.01") == 3
    assert value(found, bucket, endpoint="chat", stream="false", le="300.0") == 3
    assert value(found, bucket, endpoint="chat", stream="false", le="+Inf") == 4
    assert value(found, "localrouter_request_duration_seconds_count", endpoint="chat", stream="false") == 4
    assert value(found, "localrouter_request_duration_seconds_sum", endpoint="chat", stream="false") == pytest.approx(
        400.0201
    )


def test_workers_snapshots_are_summed_and_a_dead_workers_gauge_dropped(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    other = m.Metrics(str(tmp_path))  # stands for a live worker: this test process's parent is alive
    other.cell(m.REQUESTS, "chat", "200", "alice", "openai/gpt-4o-mini", "openai")[0] = 5
    other.cell(m.TOKENS, "alice", "openai/gpt-4o-mini", "openai", "input")[0] = 70
    m.observe_into(other.cell(m.DURATION, "chat", "false"), m.LATENCY_BUCKETS, 0.02)
    other.streams[0] = 2
    for pid in (dead_pid, __import__("os").getppid()):
        (tmp_path / f"worker-{pid}.json").write_bytes(
            __import__("orjson").dumps(
                {
                    "pid": pid,
                    "values": {
                        name: [[list(k), c] for k, c in series.items()] for name, series in other.values.items()
                    },
                }
            )
        )
    (tmp_path / "worker-garbage.json").write_text("{not json")
    mine = m.Metrics(str(tmp_path))
    mine.cell(m.REQUESTS, "chat", "200", "alice", "openai/gpt-4o-mini", "openai")[0] = 1
    mine.streams[0] = 1
    found = samples(mine.render().decode())
    assert (
        value(
            found,
            "localrouter_requests_total",
            endpoint="chat",
            status="200",
            client="alice",
            model="openai/gpt-4o-mini",
            provider="openai",
        )
        == 11
    )  # 1 + 5 (alive) + 5 (dead: it happened)
    assert (
        value(
            found,
            "localrouter_tokens_total",
            client="alice",
            model="openai/gpt-4o-mini",
            provider="openai",
            direction="input",
        )
        == 140
    )
    assert value(found, "localrouter_request_duration_seconds_count", endpoint="chat", stream="false") == 2
    assert value(found, "localrouter_streams_in_flight") == 3  # 1 + 2 (alive); the dead worker's 2 are gone


async def logged(*gws, count: int = 1) -> None:
    """Until each gateway's access log holds ``count`` lines (flushed in batches), 10 s at most."""
    async with asyncio.timeout(10):
        while any(len(gw.access.lines) < count for gw in gws):
            await asyncio.sleep(0.05)


async def test_access_log_lines(upstreams, start_gateway, http):
    gw = await start_gateway(priced(upstreams))
    _, headers, _ = await post(http, gw)
    _, stream_headers, _ = await post(http, gw, {**CHAT, "stream": True})
    status, error_headers, error = await post(http, gw, {**CHAT, "model": "openai/nope"})
    _, refused_headers, _ = await post(http, gw, {**CHAT, "model": "openai/nope", "stream": True})
    await logged(gw, count=4)
    lines = {line["request_id"]: line for line in gw.access.lines}
    plain, stream, missing = (lines[h["X-Request-ID"]] for h in (headers, stream_headers, error_headers))
    for line in (plain, stream, missing):
        assert set(line) >= {
            "time",
            "request_id",
            "client",
            "model_requested",
            "model",
            "provider",
            "status",
            "attempts",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "duration_ms",
            "ttfb_ms",
        }
        assert line["client"] == "alice" and line["duration_ms"] > 0
        assert "request_body" not in line and "hi" not in json.dumps(line)  # no prompt unless logging.bodies
    assert (plain["status"], plain["model"], plain["provider"], plain["attempts"]) == (
        200,
        "openai/gpt-4o-mini",
        "openai",
        1,
    )
    assert (plain["prompt_tokens"], plain["completion_tokens"]) == (7, 5)
    assert plain["cost_usd"] == pytest.approx(0.017) and plain["ttfb_ms"] is None
    assert stream["stream"] and stream["ttfb_ms"] > 0 and stream["prompt_tokens"] == 7
    assert missing["status"] == 404 and missing["model"] is None and missing["model_requested"] == "openai/nope"
    assert not missing["stream"] and lines[refused_headers["X-Request-ID"]]["stream"]  # refused: as it was asked
    assert error_headers["X-Request-ID"] in error["error"]["message"]  # the id is in the error message


async def test_bodies_are_logged_only_when_asked(upstreams, start_gateway, http):
    gw = await start_gateway(standard_config(*upstreams, logging={"bodies": True}))
    await post(http, gw)
    await logged(gw)
    (line,) = gw.access.lines
    assert line["request_body"]["messages"][0]["content"] == "hi"
    assert line["response_body"]["choices"][0]["message"]["content"] == "Hello from primary"


async def test_request_id_and_client_address_come_from_trusted_proxies_only(upstreams, start_gateway, http):
    forwarded = {"X-Request-ID": "from-proxy-123", "X-Forwarded-For": "203.0.113.7, 127.0.0.1"}
    untrusted = await start_gateway(standard_config(*upstreams))
    _, headers, _ = await post(http, untrusted, headers=forwarded)
    assert headers["X-Request-ID"].startswith("req_")
    trusted = await start_gateway(
        standard_config(*upstreams, server={"host": "127.0.0.1", "port": 0, "trusted_proxies": ["127.0.0.1/32"]})
    )
    _, headers, _ = await post(http, trusted, headers=forwarded)
    assert headers["X-Request-ID"] == "from-proxy-123"
    _, headers, _ = await post(http, trusted, headers={"X-Request-ID": "bad id with spaces"})
    assert headers["X-Request-ID"].startswith("req_")  # not a sane id: replaced
    await logged(untrusted, trusted)
    assert untrusted.access.lines[0]["remote"] == "127.0.0.1"
    assert trusted.access.lines[0]["remote"] == "203.0.113.7"


async def test_usage_records_match_the_upstreams_usage_and_are_private(upstreams, start_gateway, http):
    gw = await start_gateway(priced(upstreams))
    _, plain, _ = await post(http, gw)
    _, stream, _ = await post(http, gw, {**CHAT, "stream": True})
    _, unpriced, _ = await post(http, gw, {**CHAT, "model": "backup/gpt-4o-mini"})
    records = {}
    for h in (plain, stream, unpriced):
        async with http.get(gw.url + "/v1/generation", params={"id": h["X-Request-ID"]}, headers=bearer()) as resp:
            assert resp.status == 200
            records[h["X-Request-ID"]] = await resp.json()
    p, s, u = (records[h["X-Request-ID"]] for h in (plain, stream, unpriced))
    for r in (p, s):
        assert (r["prompt_tokens"], r["completion_tokens"], r["total_tokens"]) == (7, 5, 12)
        assert r["model"] == "openai/gpt-4o-mini" and r["provider"] == "openai" and r["client"] == "alice"
        assert r["cost_usd"] == pytest.approx(0.017)
    assert (p["stream"], s["stream"]) == (False, True) and s["ttfb_ms"] is not None
    assert u["cost_usd"] is None and u["total_tokens"] == 12  # no price: unknown, not zero
    await asyncio.sleep(0.7)  # written to SQLite by now: still found, still private
    async with http.get(gw.url + "/v1/generation", params={"id": plain["X-Request-ID"]}, headers=bearer()) as resp:
        assert resp.status == 200 and (await resp.json())["id"] == plain["X-Request-ID"]
    async with http.get(gw.url + "/v1/generation", params={"id": plain["X-Request-ID"]}, headers=bearer(BOB)) as resp:
        assert resp.status == 404  # another client's request
    async with http.get(gw.url + "/v1/generation", params={"id": "req_nope"}, headers=bearer()) as resp:
        assert resp.status == 404
    async with http.get(gw.url + "/v1/generation", headers=bearer()) as resp:
        assert resp.status == 400


async def test_a_lookup_never_waits_on_the_writers_transaction(upstreams, start_gateway, http, tmp_path):
    """Another connection holds SQLite's write lock: the writer's next batch waits on it (holding the
    store while it waits). Meanwhile a lookup of a record written earlier is answered at once, and the
    event loop keeps serving everything else."""
    db = tmp_path / "usage.db"
    gw = await start_gateway({**standard_config(*upstreams), "usage": {"path": str(db)}})
    _, written, _ = await post(http, gw)
    request_id = written["X-Request-ID"]
    other = sqlite3.connect(db, isolation_level=None)
    try:
        for _ in range(100):
            if other.execute("SELECT 1 FROM usage WHERE id = ?", (request_id,)).fetchone():
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the record was never written")
        other.execute("BEGIN IMMEDIATE")
        await post(http, gw)  # a record for the next batch
        await asyncio.sleep(1.2)  # the writer's flush has begun and waits for the lock (up to 5 s)

        async def timed(path: str, params: dict[str, str] | None = None) -> tuple[float, int, dict]:
            started = time.perf_counter()
            async with http.get(gw.url + path, params=params, headers=bearer()) as resp:
                return time.perf_counter() - started, resp.status, await resp.json()

        (lookup_s, status, record), (health_s, health_status, _) = await asyncio.gather(
            timed("/v1/generation", {"id": request_id}), timed("/health")
        )
    finally:
        other.close()  # rolls back: the writer's batch goes through
    assert status == 200 and record["id"] == request_id and health_status == 200
    assert lookup_s < 2 and health_s < 2, (lookup_s, health_s)  # the lock is held for seconds more


def seed(path) -> None:
    store = SQLiteStore(str(path))
    now = time.time()
    rows = [
        ("alice", "openai/gpt-4o-mini", "openai", 100, 50, 0.01, 200, now - 3600),
        ("alice", "openai/gpt-4o-mini", "openai", 10, 5, 0.001, 200, now - 60),
        ("bob", "backup/gpt-4o-mini", "backup", 7, 5, None, 200, now - 60),
        ("bob", "backup/gpt-4o-mini", "backup", 0, 0, 0.0, 503, now - 60),
        ("carol", "openai/gpt-4o-mini", "openai", 1000, 1000, 1.0, 200, now - 30 * 86400),
    ]
    store.write(
        [
            UsageRecord(
                f"req_{i}", ts, client, "chat", model, model, provider, False, status, p, c, p + c, cost, 12.0, None, 1
            )
            for i, (client, model, provider, p, c, cost, status, ts) in enumerate(rows)
        ]
    )
    store.close()


def test_usage_cli_summarises_a_seeded_store(tmp_path):
    db = tmp_path / "usage.db"
    seed(db)
    out = run("usage", "--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["client"]: r for r in json.loads(out.stdout)}
    assert set(rows) == {"alice", "bob"}  # carol's is older than the default 7 days
    assert rows["alice"]["requests"] == 2 and rows["alice"]["total_tokens"] == 165
    assert rows["alice"]["cost_usd"] == pytest.approx(0.011)
    assert rows["bob"]["unpriced_requests"] == 1 and rows["bob"]["errors"] == 1
    table = run("usage", "--db", str(db), "--by", "model", "--since", "60d").stdout.splitlines()
    assert table[0].split() == [
        "model",
        "requests",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "cost_usd",
        "unpriced",
        "errors",
        "cached",
        "saved_usd",
    ]
    assert table[2].split()[:5] == ["openai/gpt-4o-mini", "3", "1110", "1055", "2165"]
    assert table[-1].split()[:2] == ["total", "5"]
    by_day = json.loads(run("usage", "--db", str(db), "--by", "day", "--since", "60d", "--json").stdout)
    assert len(by_day) >= 2 and by_day == sorted(by_day, key=lambda r: r["day"])
    recent = json.loads(run("usage", "--db", str(db), "--since", "30m", "--json").stdout)
    assert {r["client"]: r["requests"] for r in recent} == {"alice": 1, "bob": 2}
    bad = run("usage", "--db", str(db), "--since", "soon")
    assert bad.returncode == 2 and "7d" in bad.stderr


async def test_writer_keeps_up_with_a_burst_and_stays_bounded(tmp_path):
    def record(i: int) -> UsageRecord:
        return UsageRecord(
            f"req_{i}", time.time(), "alice", "chat", "m", "p/m", "p", False, 200, 7, 5, 12, None, 1.0, None, 1
        )

    writer = UsageWriter(SQLiteStore(str(tmp_path / "a.db")), interval=0.05)
    writer.start()
    for i in range(10_000):
        writer.add(record(i))
        if i % 500 == 0:
            await asyncio.sleep(0)  # requests arrive over time: the writer gets its turns
    await writer.close()
    assert writer.written == 10_000 and writer.dropped == 0
    store = SQLiteStore(str(tmp_path / "a.db"))
    assert store.summary(0, "client")[0]["requests"] == 10_000
    store.close()
    # a store that cannot keep up never makes memory grow past the bound: the oldest are dropped, counted
    bounded = UsageWriter(SQLiteStore(str(tmp_path / "b.db")), max_pending=1000)
    for i in range(10_000):
        bounded.add(record(i))
    assert bounded.peak_pending == 1000 and bounded.dropped == 9000 and len(bounded._by_id) == 1000
    await bounded.close()


def test_store_writes_full_chunks_and_the_rest_exactly(tmp_path):
    store = SQLiteStore(str(tmp_path / "c.db"))
    records = [
        UsageRecord(
            f"req_{i}",
            1000.0 + i,
            f"c{i % 3}",
            "chat",
            None,
            "p/m",
            "p",
            i % 2 == 0,
            200,
            i,
            2 * i,
            3 * i,
            None if i % 5 == 0 else i / 1000,
            1.5,
            None if i % 2 else 0.25,
            1 + i % 4,
        )
        for i in range(1234)
    ]  # two full chunks of 500 and 234 more
    store.write(records)
    assert [store.get(f"req_{i}") for i in (0, 499, 500, 999, 1000, 1233)] == [
        records[i] for i in (0, 499, 500, 999, 1000, 1233)
    ]
    assert sum(row["requests"] for row in store.summary(0, "client")) == 1234
    store.close()


async def test_a_burst_of_requests_is_recorded_in_full(upstreams, start_gateway, http):
    gw = await start_gateway(standard_config(*upstreams))
    results = await asyncio.gather(*(post(http, gw) for _ in range(300)))
    assert {status for status, _, _ in results} == {200}
    observer: Observer = gw.app[__import__("gateway.keys", fromlist=["OBSERVER"]).OBSERVER]
    await observer.usage.flush()
    store = observer.usage.store
    (row,) = store.summary(0, "client")
    assert row["requests"] == 300 and row["total_tokens"] == 300 * 12
