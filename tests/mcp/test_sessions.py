"""MCP sessions across processes, the per-client cap, and the server-to-client stream (GET), over real
HTTP: the official SDK as the client where it can be, raw requests where the test needs the wire."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
import pytest
import yaml
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from gateway.keys import LIVE
from tests.conftest import ALICE, BOB, bearer
from tests.mcp.conftest import stdio_server
from tests.procs import start_serve, stop, write_config
from tests.redisserver import RedisServer

SIGNING_KEY = "shared-signing-key-0123456789abcdef0123"
SSE = "text/event-stream"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def mcp_config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """Alice sees everything; Bob only the server ``other``."""
    return {
        "providers": [{"name": "local", "base_url": "http://127.0.0.1:9/v1", "models": ["m"]}],
        "strategies": [
            {"name": "all", "allow": ["*"], "mcp": ["*"]},
            {"name": "other-only", "allow": ["*"], "mcp": ["other"]},
        ],
        "clients": [
            {"name": "alice", "secret": ALICE, "strategy": "all"},
            {"name": "bob", "secret": BOB, "strategy": "other-only"},
        ],
        "mcp_servers": [stdio_server("files", tmp_path / "marker"), stdio_server("other", tmp_path / "marker2")],
        **extra,
    }


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


async def initialize(http: aiohttp.ClientSession, url: str, key: str = ALICE) -> str:
    headers = {**bearer(key), "Accept": f"application/json, {SSE}"}
    async with http.post(f"{url}/mcp", json=INITIALIZE, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return resp.headers["Mcp-Session-Id"]


async def post(http: aiohttp.ClientSession, url: str, sid: str, body: dict[str, Any], key: str = ALICE) -> int:
    async with http.post(f"{url}/mcp", json=body, headers={**bearer(key), "Mcp-Session-Id": sid}) as resp:
        await resp.read()
        return resp.status


async def ping(http: aiohttp.ClientSession, url: str, sid: str, key: str = ALICE) -> int:
    return await post(http, url, sid, {"jsonrpc": "2.0", "id": 2, "method": "ping"}, key)


def pid(result: Any) -> int:
    found = re.search(r"pid (\d+)", result.content[0].text)
    assert found is not None
    return int(found.group(1))


@asynccontextmanager
async def sdk(url: str, key: str = ALICE, **options: Any) -> AsyncIterator[ClientSession]:
    """The SDK's client; ``options`` for its ClientSession (a ``message_handler``)."""
    fresh = httpx2.Limits(max_keepalive_connections=0)  # every request on a new connection
    async with (
        httpx2.AsyncClient(headers=bearer(key), timeout=30, limits=fresh) as client,
        streamable_http_client(f"{url}/mcp", http_client=client) as (read, write),
        ClientSession(read, write, **options) as session,
    ):
        await session.initialize()
        yield session


async def test_a_session_works_over_fresh_connections_to_either_of_two_workers(tmp_path):
    path = write_config(tmp_path, mcp_config(tmp_path))
    proc, url, _ = await start_serve("-c", str(path), "--workers", "2", "--allow-per-process-limits")
    try:
        async with sdk(url) as session:
            pids = {pid(await session.call_tool("files__echo", {"text": str(i)})) for i in range(16)}
    finally:
        assert await stop(proc) == 0
    assert len(pids) == 2  # each worker started its own stdio server: both served the one session


async def test_with_redis_a_session_works_on_another_replica_and_a_delete_ends_it_there(tmp_path, redis_server, http):
    data = mcp_config(tmp_path, state={"backend": "redis", "redis_url": redis_server.url})
    path = write_config(tmp_path, data)
    env = {"LOCALROUTER_SIGNING_KEY": SIGNING_KEY}
    one, url_one, _ = await start_serve("-c", str(path), env=env)
    two, url_two, _ = await start_serve("-c", str(path), env=env)
    try:
        sid = await initialize(http, url_one)
        params = {"name": "files__echo", "arguments": {"text": "there"}}
        call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": params}
        assert await post(http, url_two, sid, call) == 200
        assert await ping(http, url_two, sid, BOB) == 404  # another client's secret with Alice's id
        async with http.delete(f"{url_one}/mcp", headers={**bearer(), "Mcp-Session-Id": sid}) as resp:
            assert resp.status == 204
        assert await ping(http, url_two, sid) == 404
        assert await ping(http, url_one, sid) == 404
    finally:
        assert await stop(one) == 0
        assert await stop(two) == 0


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_past_its_cap_a_client_loses_its_least_recently_used_session_and_nobody_else_does(
    tmp_path, start_gateway, http, backend
):
    extra: dict[str, Any] = {"mcp": {"max_sessions_per_client": 3}}
    redis = RedisServer(tmp_path).start() if backend == "redis" else None
    if redis is not None:
        extra["state"] = {"backend": "redis", "redis_url": redis.url}
    try:
        gw = await start_gateway(mcp_config(tmp_path, **extra))
        bobs = await initialize(http, gw.url, BOB)
        first, second, third = [await initialize(http, gw.url) for _ in range(3)]
        assert await ping(http, gw.url, first) == 200  # now the second is the least recently used
        fourth = await initialize(http, gw.url)
        assert [await ping(http, gw.url, s) for s in (first, second, third, fourth)] == [200, 404, 200, 200]
        for _ in range(10):  # a client opening sessions in a loop
            last = await initialize(http, gw.url)
        assert [await ping(http, gw.url, s) for s in (first, third, fourth, last)] == [404, 404, 404, 200]
        assert await ping(http, gw.url, bobs, BOB) == 200
    finally:
        if redis is not None:
            redis.stop()


async def test_the_get_stream_one_per_session_and_ended_by_delete(tmp_path, start_gateway, http):
    gw = await start_gateway(mcp_config(tmp_path))
    sid = await initialize(http, gw.url)
    stream_headers = {**bearer(), "Accept": SSE, "Mcp-Session-Id": sid}
    async with http.get(f"{gw.url}/mcp", headers=stream_headers) as stream:
        assert stream.status == 200 and stream.headers["Content-Type"].startswith(SSE)
        async with http.get(f"{gw.url}/mcp", headers=stream_headers) as second:
            assert second.status == 409
        async with http.get(f"{gw.url}/mcp", headers={**bearer(), "Accept": SSE}) as resp:
            assert resp.status == 400
        async with http.get(f"{gw.url}/", headers={**stream_headers, "Mcp-Session-Id": "lrs.nope.nope"}) as resp:
            assert resp.status == 404
        async with http.get(f"{gw.url}/mcp", headers={**stream_headers, **bearer(BOB)}) as resp:
            assert resp.status == 404  # Bob's secret with Alice's session
        async with http.get(f"{gw.url}/mcp", headers={**bearer(), "Mcp-Session-Id": sid}) as resp:
            assert resp.status == 406  # no stream accepted
        async with http.delete(f"{gw.url}/mcp", headers={**bearer(), "Mcp-Session-Id": sid}) as resp:
            assert resp.status == 204
        async with asyncio.timeout(10):
            await stream.content.read()  # the stream ends with its session
    async with http.get(f"{gw.url}/mcp", headers=stream_headers) as resp:
        assert resp.status == 404
    async with http.get(f"{gw.url}/", headers=bearer()) as resp:
        assert resp.status == 404  # a plain GET of the root is still no endpoint


async def test_a_suspended_clients_get_stream_ends_at_its_next_keep_alive(tmp_path, start_gateway, http):
    ops = "lr-ops-secret-0123456789abcdefgh"
    data = mcp_config(tmp_path)
    data["clients"].append({"name": "ops", "secret": ops, "strategy": "all", "admin": True})
    gw = await start_gateway(data)
    alice, bob = await initialize(http, gw.url), await initialize(http, gw.url, BOB)
    async with (
        http.get(f"{gw.url}/mcp", headers={**bearer(), "Accept": SSE, "Mcp-Session-Id": alice}) as stream,
        http.get(f"{gw.url}/mcp", headers={**bearer(BOB), "Accept": SSE, "Mcp-Session-Id": bob}) as other,
    ):
        assert stream.status == 200 and other.status == 200
        async with http.post(f"{gw.url}/admin/api/clients/alice/suspend", headers=bearer(ops)) as resp:
            assert resp.status == 200, await resp.text()
        async with asyncio.timeout(30):  # a keep-alive comes every 15 s: the check goes with it
            await stream.content.read()
        await streams_open(gw, 1)
        assert not other.content.at_eof()  # Bob's stays open


class Heard:
    """What an SDK client's message handler was told."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    async def __call__(self, message: Any) -> None:
        if not isinstance(message, Exception):
            self.methods.append(message.method)

    async def until(self, method: str, count: int = 1) -> None:
        async with asyncio.timeout(15):
            while self.methods.count(method) < count:
                await asyncio.sleep(0.05)


async def streams_open(gw: Any, count: int) -> None:
    async with asyncio.timeout(15):  # the SDK opens its GET stream after initialize, and again after it ends
        while gw.app[LIVE].mcp_sessions.streams() != count:
            await asyncio.sleep(0.05)


async def test_list_changes_reach_sdk_clients_from_an_upstream_and_from_a_reload(tmp_path, start_gateway):
    tools = "notifications/tools/list_changed"
    path = tmp_path / "localrouter.yaml"
    data = {"server": {"watch_config": False}, **mcp_config(tmp_path)}
    path.write_text(yaml.safe_dump(data))
    gw = await start_gateway(path)
    alice_heard, bob_heard = Heard(), Heard()
    async with sdk(gw.url, message_handler=alice_heard) as alice, sdk(gw.url, BOB, message_handler=bob_heard):
        assert alice.server_capabilities.tools.list_changed is True  # type: ignore[union-attr]
        await streams_open(gw, 2)
        await alice.call_tool("files__announce", {})
        await alice_heard.until(tools)
        await asyncio.sleep(0.5)
        assert bob_heard.methods == []  # Bob's strategy sees nothing of files

        data["mcp_servers"].append(stdio_server("third", tmp_path / "marker3"))
        path.write_text(yaml.safe_dump(data))
        assert gw.app[LIVE].reload()
        await alice_heard.until(tools, 2)
        await bob_heard.until(tools)
        assert "notifications/prompts/list_changed" in bob_heard.methods
        assert "third__echo" in {t.name for t in (await alice.list_tools()).tools}

        await streams_open(gw, 2)  # the reload ended the streams (they held the old config): opened again
        await alice.call_tool("third__announce", {})
        await alice_heard.until(tools, 3)


async def test_a_shutdown_ends_an_open_get_stream_at_once_not_at_its_deadline(tmp_path, http):
    path = write_config(tmp_path, mcp_config(tmp_path, server={"shutdown_timeout": 20}))
    proc, url, _ = await start_serve("-c", str(path))
    sid = await initialize(http, url)
    async with http.get(f"{url}/mcp", headers={**bearer(), "Accept": SSE, "Mcp-Session-Id": sid}) as stream:
        assert stream.status == 200
        stopping = asyncio.create_task(stop(proc))
        async with asyncio.timeout(10):  # half the deadline: the stream is not what the shutdown waits for
            await stream.content.read()
            assert await stopping == 0


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "sse"])
async def test_a_client_that_disconnects_mid_call_has_it_cancelled_upstream(tmp_path, start_gateway, http, streamed):
    gw = await start_gateway(mcp_config(tmp_path))
    sid = await initialize(http, gw.url)
    params: dict[str, Any] = {"name": "files__sleep", "arguments": {"seconds": 60}}
    if streamed:
        params["_meta"] = {"progressToken": "p1"}
    headers = {**bearer(), "Mcp-Session-Id": sid, "Accept": f"application/json, {SSE}"}
    body = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": params}

    async def call() -> None:
        async with aiohttp.ClientSession() as own, own.post(f"{gw.url}/mcp", json=body, headers=headers) as resp:
            await resp.read()

    calling = asyncio.create_task(call())
    await running(gw)
    calling.cancel()  # the connection closes mid-call
    async with asyncio.timeout(20):  # far less than the call's own 60-second timeout
        while not (tmp_path / "marker").exists():
            await asyncio.sleep(0.05)
    assert (tmp_path / "marker").read_text() == "cancelled"


async def running(gw: Any) -> None:
    """Until the stdio server ``files`` is up and a moment has passed for the call to reach it."""
    hub = gw.app[LIVE].current.mcp
    async with asyncio.timeout(20):
        while hub.health()[0].state != "up":
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
