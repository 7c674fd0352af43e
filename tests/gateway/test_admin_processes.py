"""Operator actions reach every process: two ``serve`` processes sharing Redis, and ``serve --workers 2``
without Redis (through the workers' shared directory). A suspended client is refused with 401 by each
process, a resumed one served again, and a reset cooldown is over on each; the overview counts every
worker; a logged-out session is refused by each; ``localrouter clients resume`` ends a suspension on
each. Which process answered: the prefix of its request ids (one random prefix per process)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tests.conftest import ALICE, bearer
from tests.fakes.openai_upstream import FakeOpenAI, Script
from tests.gateway.test_admin_api import ADMIN, API, admin_config
from tests.procs import run, start_serve, stop, write_config
from tests.redisserver import RedisServer

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
PROPAGATION = 5.0  # generous: the processes read the shared overrides every 0.5 s


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def _serve(tmp_path, data: dict[str, Any], *args: str) -> AsyncIterator[list[str]]:
    path = write_config(tmp_path, data)
    count = 1 if "--workers" in args else 2
    procs = [await start_serve("-c", str(path), *args, env={"ALICE_SECRET": ALICE}) for _ in range(count)]
    try:
        yield [url for _, url, _ in procs]
    finally:
        for proc, _, _ in procs:
            assert await stop(proc) == 0


async def _chat(url: str) -> tuple[int, str, str | None]:
    """(status, the answering process, the target that answered) over a connection of its own, so that
    under ``--workers`` the kernel spreads these requests over the workers."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        async with http.post(url + "/v1/chat/completions", json=CHAT, headers=bearer(ALICE)) as resp:
            await resp.read()
            return resp.status, resp.headers["X-Request-ID"][:16], resp.headers.get("x-localrouter-model")


async def _everywhere(urls: list[str], check: Callable[[int, str | None], bool]) -> None:
    """Until every process (two) answers as ``check`` wants, each of the last 12 requests included."""
    deadline = time.monotonic() + PROPAGATION
    while True:
        answers = [await _chat(urls[i % len(urls)]) for i in range(12)]
        if all(check(status, model) for status, _, model in answers) and len({p for _, p, _ in answers}) == 2:
            return
        assert time.monotonic() < deadline, answers
        await asyncio.sleep(0.1)


async def _admin(url: str, path: str) -> Any:
    async with aiohttp.ClientSession() as http:
        async with http.post(url + API + path, headers=bearer(ADMIN)) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


async def _actions_reach_every_process(urls: list[str], primary: FakeOpenAI) -> None:
    await _everywhere(urls, lambda status, _: status == 200)
    await _admin(urls[0], "/clients/alice/suspend")
    if len(urls) == 2:  # (under --workers the one port may hand the request to the other worker)
        assert (await _chat(urls[0]))[0] == 401  # the process that took the action: at once
    await _everywhere(urls, lambda status, _: status == 401)
    await _admin(urls[-1], "/clients/alice/resume")
    await _everywhere(urls, lambda status, _: status == 200)
    primary.default = Script(status=500)  # every process opens the target's breaker (one failure, 300 s)
    await _everywhere(urls, lambda status, model: status == 200 and model == "backup/gpt-4o-mini")
    primary.default = Script()
    await _everywhere(urls, lambda status, model: model == "backup/gpt-4o-mini")  # still cooling down
    await _admin(urls[0], "/targets/openai/gpt-4o-mini/reset")
    await _everywhere(urls, lambda status, model: model == "openai/gpt-4o-mini")


def _config(upstreams: tuple[FakeOpenAI, FakeOpenAI], **extra: Any) -> dict[str, Any]:
    data = admin_config(*upstreams, **extra)
    data["providers"][0]["cooldown"] = {"failures": 1, "seconds": 300}
    data["logging"] = {"access": False}
    data["auth"] = {"signing_key": "k" * 32}  # one key: every process accepts the others' cookies
    return data


async def test_two_processes_sharing_redis(tmp_path, upstreams, redis_server) -> None:
    data = _config(upstreams, state={"backend": "redis", "redis_url": redis_server.url})
    async with _serve(tmp_path, data) as urls:
        await _actions_reach_every_process(urls, upstreams[0])
        await _logout_reaches_every_process(urls)


async def test_workers_without_redis(tmp_path, upstreams) -> None:
    async with _serve(tmp_path, _config(upstreams), "--workers", "2", "--allow-per-process-limits") as urls:
        await _actions_reach_every_process(urls, upstreams[0])
        await _logout_reaches_every_process(urls)
        await asyncio.sleep(1.5)  # each worker's metrics snapshot is written every second
        async with aiohttp.ClientSession() as http:
            async with http.get(urls[0] + API + "/overview", headers=bearer(ADMIN)) as resp:
                doc = await resp.json()
        assert doc["workers"] == 2


async def test_workers_overview_sums_every_workers_cache_lookups_and_firewall_decisions(tmp_path, upstreams) -> None:
    data = _config(upstreams)
    data["strategies"][0] |= {"cache": True, "firewall": [{"match": "openai/text-embedding-*", "action": "deny"}]}
    async with _serve(tmp_path, data, "--workers", "2", "--allow-per-process-limits") as urls:
        answers = [await _chat(urls[0]) for _ in range(12)]
        while len({process for _, process, _ in answers}) < 2 and len(answers) < 60:
            answers.append(await _chat(urls[0]))
        assert len({process for _, process, _ in answers}) == 2 and {s for s, _, _ in answers} == {200}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            for _ in range(3):
                body = {"model": "openai/text-embedding-3-small", "input": "x"}
                async with http.post(urls[0] + "/v1/embeddings", json=body, headers=bearer(ALICE)) as resp:
                    assert resp.status == 403
            await asyncio.sleep(1.5)  # each worker's metrics snapshot is written every second
            async with http.get(urls[0] + API + "/overview", headers=bearer(ADMIN)) as resp:
                doc = await resp.json()
        cache = doc["cache"]
        assert cache["lookups"] == len(answers) and cache["hits"] == len(answers) - 2  # one miss per worker
        assert cache["hit_ratio"] == cache["hits"] / cache["lookups"] and cache["bytes"] > 0
        assert doc["firewall"] == {"total": 3, "by_action": {"deny": 3}}


async def _logout_reaches_every_process(urls: list[str]) -> None:
    """A session logged out on one process: its cookie refused by each (two), the last 12 requests included."""
    async with aiohttp.ClientSession() as http:
        async with http.post(urls[0] + API + "/login", json={"secret": ADMIN}) as resp:
            csrf = (await resp.json())["csrf"]
            cookie = {"Cookie": f"lr_admin={resp.cookies['lr_admin'].value}"}
        async with http.get(urls[-1] + API + "/clients", headers=cookie) as resp:
            assert resp.status == 200  # the other process takes the cookie (one signing key)
        async with http.post(urls[0] + API + "/logout", headers={**cookie, "X-CSRF-Token": csrf}) as resp:
            assert resp.status == 204
    deadline = time.monotonic() + PROPAGATION
    while True:
        answers = []
        for i in range(12):
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
                async with http.get(urls[i % len(urls)] + API + "/clients", headers=cookie) as resp:
                    answers.append((resp.status, resp.headers["X-Request-ID"][:16]))
        if all(status == 401 for status, _ in answers) and len({p for _, p in answers}) == 2:
            return
        assert time.monotonic() < deadline, answers
        await asyncio.sleep(0.1)


async def test_the_cli_resumes_a_client_in_redis_for_every_process(tmp_path, upstreams, redis_server) -> None:
    data = _config(upstreams, state={"backend": "redis", "redis_url": redis_server.url})
    async with _serve(tmp_path, data) as urls:
        await _admin(urls[0], "/clients/alice/suspend")
        await _everywhere(urls, lambda status, _: status == 401)
        path = str(tmp_path / "localrouter.yaml")
        done = await asyncio.to_thread(run, "clients", "resume", "alice", "-c", path, env={"ALICE_SECRET": ALICE})
        assert done.returncode == 0, done.stderr
        assert "alice" in done.stdout and "Redis" in done.stdout and redis_server.url not in done.stdout
        await _everywhere(urls, lambda status, _: status == 200)
        unknown = await asyncio.to_thread(run, "clients", "resume", "nobody", "-c", path, env={"ALICE_SECRET": ALICE})
        assert unknown.returncode == 2 and "no client named 'nobody'" in unknown.stderr


def test_the_cli_says_what_resume_means_without_shared_state(tmp_path, upstreams) -> None:
    path = write_config(tmp_path, _config(upstreams))
    done = run("clients", "resume", "alice", "-c", str(path), env={"ALICE_SECRET": ALICE})
    assert done.returncode == 2
    assert (
        "memory" in done.stderr
        and "end when it stops" in done.stderr
        and "/admin/api/clients/alice/resume" in (done.stderr)
    )


async def _overview(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url + API + "/overview", headers=bearer(ADMIN)) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


async def test_two_replicas_sharing_redis_overview_sums_both_and_metrics_stay_per_process(
    tmp_path, upstreams, redis_server
) -> None:
    """Two replicas (separate ``serve`` processes) on one Redis: the overview counts both processes and
    sums their cache lookups (each replica's own metrics, published to Redis); ``/metrics`` stays the
    scraped replica's own (Prometheus sums replicas), and with the Redis cache it has no size gauge (Redis
    keeps no count). A replica that stops drops out of the sum."""
    data = _config(upstreams, state={"backend": "redis", "redis_url": redis_server.url}, cache={"backend": "redis"})
    data["strategies"][0] |= {"cache": True}
    async with _serve(tmp_path, data) as urls:
        for i in range(6):  # 3 on each replica: a miss first, hits after (the cache is shared)
            assert (await _chat(urls[i % 2]))[0] == 200
        deadline = time.monotonic() + PROPAGATION
        while (doc := await _overview(urls[0]))["cache"]["lookups"] < 6:  # snapshots published every second
            assert time.monotonic() < deadline, doc
            await asyncio.sleep(0.2)
        assert doc["workers"] == 2
        assert doc["cache"] == {"lookups": 6, "hits": 5, "hit_ratio": 5 / 6, "bytes": None}
        async with aiohttp.ClientSession() as http:
            async with http.get(urls[0] + "/metrics") as resp:
                text = await resp.text()
        lookups = sum(
            float(line.split()[-1]) for line in text.splitlines() if line.startswith("localrouter_cache_lookups_total{")
        )
        assert lookups == 3  # this replica's alone
        assert not [line for line in text.splitlines() if line.startswith("localrouter_cache_bytes")]
        path = write_config(tmp_path, data)
        alone = await start_serve("-c", str(path), env={"ALICE_SECRET": ALICE})
        try:
            deadline = time.monotonic() + PROPAGATION
            while (await _overview(urls[1]))["workers"] != 3:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
        finally:
            assert await stop(alone[0]) == 0
        assert (await _overview(urls[1]))["workers"] == 2  # it said goodbye: gone at once
