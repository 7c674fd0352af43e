"""serve --workers N on one port, and the graceful end on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import aiohttp
import pytest

from tests.conftest import ALICE, bearer, sse_events, standard_config
from tests.fakes.openai_upstream import Script
from tests.procs import read_until, run, start_serve, stop, write_config
from tests.redisserver import RedisServer

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
ENV = {"ALICE_SECRET": ALICE}


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def test_workers_need_shared_state_or_an_explicit_override(tmp_path, upstreams):
    path = write_config(tmp_path, standard_config(*upstreams))
    out = run("serve", "-c", str(path), "--workers", "2", env=ENV)
    assert out.returncode == 2 and "state.backend: redis" in out.stderr and "--allow-per-process-limits" in out.stderr


async def test_two_workers_share_the_port_and_one_budget(tmp_path, upstreams, redis_server):
    data = standard_config(*upstreams)
    data["state"] = {"backend": "redis", "redis_url": redis_server.url}
    data["strategies"][0]["rate_limits"] = [{"requests": 20, "per": "minute"}]
    proc, url, lines = await start_serve("-c", str(write_config(tmp_path, data)), "--workers", "2", env=ENV)
    try:
        assert "(2 workers)" in lines[-1]
        pids = Counter()
        for _ in range(40):  # a new connection each time: the kernel spreads them over the workers
            async with aiohttp.ClientSession() as http, http.get(url + "/health?detail=1") as resp:
                pids[(await resp.json())["pid"]] += 1
        assert len(pids) == 2, pids
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:

            async def one() -> int:
                async with http.post(url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
                    await resp.read()
                    return resp.status

            statuses = Counter(await asyncio.gather(*(one() for _ in range(60))))
        assert statuses == {200: 20, 429: 40}  # one budget across both workers
        # tokens issued by one worker work on the other (one signing key for all)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            async with http.post(
                url + "/oauth/token",
                data={"grant_type": "client_credentials", "client_id": "alice", "client_secret": ALICE},
            ) as resp:
                token = (await resp.json())["access_token"]
            for _ in range(10):
                async with http.get(url + "/v1/models", headers=bearer(token)) as resp:
                    assert resp.status == 200
        # every worker's requests, summed; the other worker's part is its last snapshot (at most 1 s old)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            for _ in range(30):
                async with http.get(url + "/metrics") as resp:
                    text = await resp.text()
                served = sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("localrouter_requests_total{") and 'endpoint="chat"' in line
                )
                if served >= 60:
                    break
                await asyncio.sleep(0.1)
        assert served == 60
    finally:
        assert await stop(proc) == 0


async def test_sigterm_lets_50_open_streams_finish_then_exits_0(tmp_path, upstreams):
    primary, _ = upstreams
    primary.default = Script(chunks=20, chunk_delay=0.1)  # 2 s per stream
    data = standard_config(*upstreams)
    data["server"]["drain_seconds"] = 1
    proc, url, _ = await start_serve("-c", str(write_config(tmp_path, data)), env=ENV)
    started = asyncio.Event()
    opened = 0

    async def one(http: aiohttp.ClientSession) -> list:
        nonlocal opened
        async with http.post(url + "/v1/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
            assert resp.status == 200
            first = await resp.content.readline()
            opened += 1
            if opened == 50:
                started.set()
            return [first, *await sse_events(resp)]

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        streams = [asyncio.create_task(one(http)) for _ in range(50)]
        await asyncio.wait_for(started.wait(), 10)
        proc.send_signal(signal.SIGTERM)
        await read_until(proc, "draining")
        async with http.get(url + "/health") as resp:  # still serving, but out of rotation
            assert resp.status == 503 and (await resp.json())["status"] == "draining"
        results = await asyncio.gather(*streams)
    assert all(
        events[-1] == "[DONE]" and not any(isinstance(e, dict) and "error" in e for e in events[1:-1])
        for events in results
    )
    async with asyncio.timeout(20):
        assert await proc.wait() == 0
    with pytest.raises(aiohttp.ClientConnectionError):  # and nothing listens any more
        async with aiohttp.ClientSession() as http, http.get(url + "/health"):
            pass
