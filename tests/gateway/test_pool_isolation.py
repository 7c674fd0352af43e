"""Connection pools: a provider that hangs holds only its own connections, and a full pool is that
target's failure (the chain moves on) instead of a silent wait for the first-byte deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import yaml

from gateway import config as gwconfig
from gateway.keys import LIVE
from providers.registry import TYPES
from tests.conftest import ALICE, ENV, bearer, standard_config
from tests.fakes.openai_upstream import Script

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
BACKUP_CHAT = {**CHAT, "model": "backup/gpt-4o-mini"}
POOL = 20
HUNG = 25  # more than the pool holds: some wait for a connection


def hanging_primary(upstreams, pool_at: str) -> dict:
    """`openai` never answers (first_byte far away, so its calls keep their connections); its pool holds
    ``POOL`` connections, set in ``server`` or on the provider itself."""
    primary, backup = upstreams
    primary.default = Script(hang=True)
    data = standard_config(primary, backup)
    data["providers"][0]["timeouts"] = {"first_byte": 60, "connect": 1}
    # no model discovery: `backup` must open a new connection (an idle pooled one is reused past any limit)
    data["providers"][1]["models"] = ["gpt-4o-mini"]
    if pool_at == "server":
        data["server"]["upstream_connections"] = POOL
    else:
        data["providers"][0]["max_connections"] = POOL
    return data


async def post(http, gw, body) -> tuple[int, dict, dict]:
    async with http.post(gw.url + "/v1/chat/completions", json=body, headers=bearer()) as resp:
        return resp.status, dict(resp.headers), await resp.json()


@asynccontextmanager
async def hung(http, gw, primary, body=CHAT, count=HUNG) -> AsyncIterator[list[asyncio.Task]]:
    """``count`` requests in the background, until ``POOL`` of them hang upstream; at the end the clients
    go away, and the gateway must cancel every upstream call they made."""
    tasks = [asyncio.create_task(post(http, gw, body)) for _ in range(count)]
    try:
        async with asyncio.timeout(10):
            while len(primary.received) < POOL:
                await asyncio.sleep(0.05)
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        async with asyncio.timeout(10):
            while primary.cancelled < POOL:
                await asyncio.sleep(0.05)


@pytest.mark.parametrize("pool_at", ["server", "provider"])
async def test_a_hung_provider_cannot_take_another_providers_connections(upstreams, start_gateway, http, pool_at):
    primary, backup = upstreams
    data = hanging_primary(upstreams, pool_at)
    data["strategies"][0]["fallbacks"] = {}  # the hung requests stay on `openai`
    gw = await start_gateway(data)
    async with hung(http, gw, primary) as tasks:
        started = time.monotonic()
        status, headers, _ = await asyncio.wait_for(post(http, gw, BACKUP_CHAT), 10)
        assert status == 200 and headers["x-localrouter-provider"] == "backup"
        assert time.monotonic() - started < 5  # not a wait for `openai`'s connections
        assert sum(t.done() for t in tasks) <= HUNG - POOL  # `openai` still hangs
        # those beyond the pool do not wait silently: no connection within `connect` is a failure
        async with asyncio.timeout(10):
            while sum(t.done() for t in tasks) < HUNG - POOL:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        done = [t for t in tasks if t.done()]
        assert len(done) == HUNG - POOL
        for task in done:
            status, _, payload = task.result()
            assert status == 503
            assert "no connection within 1s (all 20 of its connections busy" in payload["error"]["message"]
        assert len(primary.received) == POOL


@pytest.mark.parametrize("pool_at", ["server", "provider"])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_full_pool_falls_back_to_the_next_target(upstreams, start_gateway, http, pool_at, stream):
    primary, backup = upstreams
    gw = await start_gateway(hanging_primary(upstreams, pool_at))
    async with hung(http, gw, primary, count=POOL):
        started = time.monotonic()
        body = {**CHAT, "stream": stream}
        async with asyncio.timeout(10):
            async with http.post(gw.url + "/v1/chat/completions", json=body, headers=bearer()) as resp:
                await resp.read()
        assert resp.status == 200
        assert resp.headers["x-localrouter-provider"] == "backup"
        assert resp.headers["x-localrouter-attempts"] == "2"  # the wait for `openai` counted as its failure
        assert time.monotonic() - started < 5
        assert len(primary.received) == POOL  # it never reached `openai`
        failed = {b["target"]: b["consecutive_failures"] for b in gw.app[LIVE].breakers.snapshot()}
        assert failed.get("openai/gpt-4o-mini") == 1  # the failure is `openai`'s, for its breaker too


def test_max_connections_must_be_a_positive_integer(upstreams):
    for bad in (0, "many", 1.5):
        data = standard_config(*upstreams)
        data["providers"][0]["max_connections"] = bad
        with pytest.raises(gwconfig.ConfigError, match=r"providers\[0\]\.max_connections"):
            gwconfig.parse(data, ENV, types=TYPES)
    data = standard_config(*upstreams, server={"upstream_connections": 7})
    data["providers"][0]["max_connections"] = 3
    cfg = gwconfig.parse(data, ENV, types=TYPES)
    assert [p.max_connections for p in cfg.providers] == [3, 7]


async def test_a_reload_closes_the_old_pools_once_their_requests_finish(
    upstreams, start_gateway, http, tmp_path, monkeypatch
):
    monkeypatch.setenv("ALICE_SECRET", ALICE)  # a reload reads the environment
    primary, backup = upstreams
    primary.queue(Script(delay=1.5))
    data = standard_config(primary, backup)
    data["server"]["watch_config"] = False
    path = Path(tmp_path / "localrouter.yaml")
    path.write_text(yaml.safe_dump({**data, "usage": {"path": str(tmp_path / "usage.db")}}))
    gw = await start_gateway(path)
    live = gw.app[LIVE]
    old = live.current
    slow = asyncio.create_task(post(http, gw, CHAT))
    async with asyncio.timeout(5):
        while not primary.received:
            await asyncio.sleep(0.02)
    assert live.reload()
    await asyncio.sleep(0.3)
    assert not any(s.closed for s in old.sessions.values())  # its request still uses them
    status, headers, _ = await post(http, gw, BACKUP_CHAT)  # the new runtime's pools serve meanwhile
    assert status == 200
    status, headers, _ = await slow
    assert status == 200 and headers["x-localrouter-provider"] == "openai"  # finished on the old pool
    async with asyncio.timeout(5):
        while not all(s.closed for s in old.sessions.values()):
            await asyncio.sleep(0.02)
    assert not any(s.closed for s in live.current.sessions.values())
