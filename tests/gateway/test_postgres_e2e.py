"""Usage records and stored responses in one PostgreSQL database shared by gateway processes: the CLI's
totals are every replica's requests, a conversation continues on the other replica, and the database
stopped under load fails no request and loses no record within the buffer's bound."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from gateway.observability.postgres import MIGRATIONS
from tests.conftest import ALICE, bearer, standard_config
from tests.pgserver import PASSWORD
from tests.procs import run, start_serve, stop, write_config
from tests.redisserver import free_port

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def pg_config(upstreams, **usage) -> dict:
    data = standard_config(*upstreams)
    data["usage"] = {"backend": "postgres", "url": "${PG_URL}", "pool": 2, **usage}
    return data


def usage_totals(path, pg_url: str) -> dict:
    done = run("usage", "-c", str(path), "--json", "--since", "1h", env={"PG_URL": pg_url, "ALICE_SECRET": ALICE})
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    rows = json.loads(done.stdout)
    return {row["client"]: row["requests"] for row in rows}


async def test_two_processes_write_one_database(tmp_path, upstreams, pg_url):
    path = write_config(tmp_path, pg_config(upstreams))
    env = {"ALICE_SECRET": ALICE, "PG_URL": pg_url}
    procs = [await start_serve("-c", str(path), env=env) for _ in range(2)]
    try:
        urls = [url for _, url, _ in procs]
        async with aiohttp.ClientSession() as http:

            async def one(i: int) -> int:
                async with http.post(urls[i % 2] + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
                    await resp.read()
                    return resp.status

            statuses = await asyncio.gather(*(one(i) for i in range(30)))
            assert statuses == [200] * 30
            ask = {"model": "openai/gpt-4o-mini", "input": "hi"}
            async with http.post(urls[0] + "/v1/responses", json=ask, headers=bearer()) as resp:
                assert resp.status == 200, await resp.text()
                first = await resp.json()
            follow = {**ask, "input": "and again", "previous_response_id": first["id"]}
            async with http.post(urls[1] + "/v1/responses", json=follow, headers=bearer()) as resp:
                assert resp.status == 200, await resp.text()  # the other replica knows the conversation
            async with http.get(urls[1] + f"/v1/responses/{first['id']}", headers=bearer()) as resp:
                assert resp.status == 200 and (await resp.json())["id"] == first["id"]
            async with http.get(urls[1] + "/health") as resp:
                health = await resp.json()
            assert health["usage_store"] == {"backend": "postgres", "ok": True} and health["status"] == "ok"
    finally:
        for proc, _, _ in procs:
            assert await stop(proc) == 0  # each writes what it holds before it exits
    assert usage_totals(path, pg_url) == {"alice": 32}


async def test_database_stopped_under_load_fails_no_request(tmp_path, upstreams, pg_server, pg_url):
    path = write_config(tmp_path, pg_config(upstreams))
    proc, url, _ = await start_serve("-c", str(path), env={"ALICE_SECRET": ALICE, "PG_URL": pg_url})
    made = 0
    try:
        async with aiohttp.ClientSession() as http:

            async def burst(n: int) -> None:
                nonlocal made
                for _ in range(n):
                    async with http.post(url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
                        await resp.read()
                        assert resp.status == 200
                    made += 1

            async def health() -> dict:
                async with http.get(url + "/health") as resp:
                    assert resp.status == 200
                    return await resp.json()

            await burst(10)
            load = asyncio.create_task(burst(40))
            await asyncio.sleep(0.2)
            pg_server.stop()
            await load
            await burst(10)
            async with asyncio.timeout(20):  # the writer's next try finds the database gone
                while (doc := await health())["status"] != "degraded":
                    await asyncio.sleep(0.1)
            assert doc["usage_store"]["backend"] == "postgres" and not doc["usage_store"]["ok"]
            assert doc["usage_store"]["pending"] > 0 and doc["usage_store"]["dropped"] == 0
            assert PASSWORD not in json.dumps(doc)
            pg_server.start()
            async with asyncio.timeout(30):  # retried with backoff: written once the database is back
                while (await health())["status"] != "ok":
                    await asyncio.sleep(0.2)
    finally:
        pg_server.start_if_stopped()
        assert await stop(proc) == 0
    assert made == 60
    assert usage_totals(path, pg_url) == {"alice": 60}


def test_db_upgrade_applies_the_schema_once(tmp_path, upstreams, pg_url):
    path = write_config(tmp_path, pg_config(upstreams))
    env = {"PG_URL": pg_url, "ALICE_SECRET": ALICE}
    for _ in range(2):  # a second run finds nothing to do
        done = run("db", "upgrade", "-c", str(path), env=env)
        assert (done.returncode, done.stdout.strip()) == (0, f"schema at version {MIGRATIONS[-1][0]}"), done.stderr
    assert usage_totals(path, pg_url) == {}  # the tables are there, empty
    sqlite = write_config(tmp_path, standard_config(*upstreams))
    done = run("db", "upgrade", "-c", str(sqlite), env=env)
    assert done.returncode == 2 and "not postgres" in done.stderr
    down = write_config(tmp_path, pg_config(upstreams))
    done = run("db", "upgrade", "-c", str(down), env={**env, "PG_URL": "postgresql://lr:hidden-pw@127.0.0.1:1/lr"})
    assert done.returncode == 1 and "schema not upgraded" in done.stderr and "hidden-pw" not in done.stderr


async def test_the_database_down_answers_stored_reads_with_503_and_serves_the_rest(
    tmp_path, upstreams, start_gateway, http
):
    data = pg_config(upstreams)
    data["usage"]["url"] = f"postgresql://lr:hidden-pw@127.0.0.1:{free_port()}/lr"  # nothing listens there
    gw = await start_gateway(data, env={"ALICE_SECRET": ALICE})
    async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.status == 200
    ask = {"model": "openai/gpt-4o-mini", "input": "hi"}
    async with http.post(gw.url + "/v1/responses", json=ask, headers=bearer()) as resp:
        assert resp.status == 200  # answered; not stored (logged)
    for method, path, body in (
        ("GET", "/v1/responses/resp_x", None),
        ("DELETE", "/v1/responses/resp_x", None),
        ("POST", "/v1/responses", {**ask, "previous_response_id": "resp_x"}),
        ("GET", "/v1/generation?id=nope", None),
    ):
        async with http.request(method, gw.url + path, json=body, headers=bearer()) as resp:
            doc = await resp.json()
            assert resp.status == 503 and doc["error"]["code"] == "store_unavailable", (path, doc)
            assert "hidden-pw" not in json.dumps(doc) and "127.0.0.1" not in json.dumps(doc)


def test_usage_by_tool_counts_the_mcp_records_only(tmp_path, upstreams, pg_url):
    from gateway.observability.postgres import PostgresStore
    from gateway.observability.usage import UsageRecord

    path = write_config(tmp_path, pg_config(upstreams))
    env = {"PG_URL": pg_url, "ALICE_SECRET": ALICE}
    assert run("db", "upgrade", "-c", str(path), env=env).returncode == 0
    now = time.time()
    calls = [("mcp", "files__echo", "files", None), ("mcp", "files__echo", "files", "timeout")]
    calls += [("chat", "openai/gpt-4o-mini", "openai", None)]
    store = PostgresStore(pg_url, pool=1)
    try:
        store.write(
            [
                UsageRecord(
                    f"r{i}", now, "alice", endpoint, item, None, server, False, 200, 0, 0, 0, None, 1.0, None, 1, code
                )
                for i, (endpoint, item, server, code) in enumerate(calls)
            ]
        )
    finally:
        store.close()
    done = run("usage", "-c", str(path), "--by", "tool", "--json", "--since", "1h", env=env)
    assert done.returncode == 0, done.stderr
    assert [(r["tool"], r["requests"], r["errors"]) for r in json.loads(done.stdout)] == [("files__echo", 2, 1)]
