"""MCP calls the firewall holds or judges, over real sockets: a rule on a resource holds from the first read
after a start (the hub locates the URI before the firewall judges), and a held call the client cancels
(the SDK's own timeout, or ``notifications/cancelled`` reaching another process over Redis) leaves the list
and never reaches its server, whatever an admin decides afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from typing import Any

import aiohttp
import pytest
from mcp import MCPError

from gateway.mcp.inbound import REQUEST_CANCELLED
from tests.conftest import ALICE, ENV
from tests.firewall.conftest import audit as audit_records
from tests.firewall.conftest import decide, waiting
from tests.firewall.test_mcp_e2e import connected, mcp_config
from tests.procs import start_serve, stop, write_config
from tests.redisserver import RedisServer

SIGNING_KEY = "lr-test-signing-key-0123456789abcdef0123"


def held_config(tmp_path: Any, rules: list[dict[str, str]]) -> dict[str, Any]:
    data = mcp_config(tmp_path, secrets="off")
    data["strategies"][0]["firewall"] = rules
    return data


def pid_of(result: Any) -> str:
    return str(result.content[0].text).rsplit("(pid ", 1)[1]


async def none_waiting(http: aiohttp.ClientSession, url: str) -> None:
    """Until no approval is listed (a cancellation travels on its own, after the call it names)."""
    async with asyncio.timeout(10):
        while await waiting(http, url, count=0):
            await asyncio.sleep(0.05)


async def usage_rows(db: Any, count: int) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    async with asyncio.timeout(10):  # usage records are written in batches
        while len(rows) < count:
            await asyncio.sleep(0.1)
            with contextlib.closing(sqlite3.connect(db)) as conn:
                query = "SELECT model_requested, status, error_code, provider FROM usage WHERE endpoint = 'mcp'"
                rows = conn.execute(query).fetchall()
    return rows


async def test_a_rule_on_a_resource_holds_from_the_first_read_after_a_start(tmp_path, start_gateway, http):
    gw = await start_gateway(held_config(tmp_path, [{"match": "files__note://*", "action": "ask"}]))
    async with connected(f"{gw.url}/mcp") as session:  # no resources/list before the read
        read = asyncio.create_task(session.read_resource("note://stdio/readme"))
        [approval] = await waiting(http, gw.url)
        assert approval["what"] == "files__note://stdio/readme" and approval["rule"] == "files__note://*"
        assert await decide(http, gw.url, approval["id"], "allow_once") == 200
        assert (await asyncio.wait_for(read, 10)).contents[0].text == "read me from stdio"
    rows = await usage_rows(tmp_path / "usage.db", 1)
    assert rows == [("note://stdio/readme", 200, None, "files")]  # recorded with its server


async def test_a_deny_rule_on_a_resource_refuses_the_first_read(tmp_path, start_gateway):
    gw = await start_gateway(held_config(tmp_path, [{"match": "files__note://*", "action": "deny"}]))
    async with connected(f"{gw.url}/mcp") as session:
        with pytest.raises(MCPError) as caught:
            await session.read_resource("note://stdio/readme")
    assert "denied by the firewall rule `files__note://*`" in caught.value.error.message


async def test_a_held_call_the_sdk_gives_up_on_leaves_the_list_and_never_runs(tmp_path, start_gateway, http):
    gw = await start_gateway(held_config(tmp_path, [{"match": "files__crash", "action": "ask"}]))
    async with connected(f"{gw.url}/mcp") as session:
        pid = pid_of(await session.call_tool("files__echo", {"text": "before"}))
        call = asyncio.create_task(session.call_tool("files__crash", {}, read_timeout_seconds=1.5))
        [approval] = await waiting(http, gw.url)
        with pytest.raises(MCPError):  # the SDK's timeout: it sends notifications/cancelled
            await asyncio.wait_for(call, 10)
        await none_waiting(http, gw.url)  # off the list
        assert await decide(http, gw.url, approval["id"], "allow_once") == 404  # nothing left to approve
        await asyncio.sleep(0.5)
        assert pid_of(await session.call_tool("files__echo", {"text": "after"})) == pid  # crash never ran
    records = {(r.subject, r.action, r.actor) for r in await audit_records(gw)}
    assert records == {("files__crash", "abandoned", "client")}
    rows = await usage_rows(tmp_path / "usage.db", 3)
    assert ("files__crash", 499, "cancelled", None) in rows


class Rpc:
    """MCP's JSON-RPC over plain HTTP, on one session that any process sharing the signing key knows."""

    def __init__(self, http: aiohttp.ClientSession, url: str, session_id: str | None = None) -> None:
        self.http, self.url, self.session_id = http, url, session_id

    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {ALICE}", "Accept": "application/json, text/event-stream"}
        return headers | ({"Mcp-Session-Id": self.session_id} if self.session_id else {})

    async def post(self, message: dict[str, Any]) -> tuple[int, Any]:
        async with self.http.post(f"{self.url}/mcp", json={"jsonrpc": "2.0", **message}, headers=self.headers()) as r:
            return r.status, (await r.json() if r.content_type == "application/json" else None)

    async def initialize(self) -> Rpc:
        params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
        async with self.http.post(f"{self.url}/mcp", json=body, headers=self.headers()) as resp:
            assert resp.status == 200
            self.session_id = resp.headers["Mcp-Session-Id"]
        return self


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


async def test_a_held_call_cancelled_through_another_process_leaves_the_list_and_never_runs(
    tmp_path, redis_server, http
):
    data = held_config(tmp_path, [{"match": "files__crash", "action": "ask"}])
    data["state"] = {"backend": "redis", "redis_url": redis_server.url}
    data["auth"] = {"signing_key": SIGNING_KEY}
    del data["usage"]
    path = write_config(tmp_path, data)
    first, first_url, _ = await start_serve("-c", str(path), env=ENV)
    second, second_url, _ = await start_serve("-c", str(path), env=ENV)
    try:
        holder = await Rpc(http, first_url).initialize()
        echo = {"method": "tools/call", "params": {"name": "files__echo", "arguments": {"text": "a"}}}
        _, before = await holder.post({"id": 1, **echo})
        pid = before["result"]["content"][0]["text"].rsplit("(pid ", 1)[1]
        call = asyncio.create_task(holder.post({"id": 7, "method": "tools/call", "params": {"name": "files__crash"}}))
        [approval] = await waiting(http, second_url)
        other = Rpc(http, second_url, holder.session_id)  # the same session, on the process that does not hold it
        status, _ = await other.post({"method": "notifications/cancelled", "params": {"requestId": 7}})
        assert status == 202
        status, answer = await asyncio.wait_for(call, 10)
        assert status == 200 and answer["error"]["code"] == REQUEST_CANCELLED
        await none_waiting(http, first_url)
        assert await decide(http, second_url, approval["id"], "allow_once") == 404
        _, after = await holder.post({"id": 8, **echo})
        assert after["result"]["content"][0]["text"].rsplit("(pid ", 1)[1] == pid  # crash never ran
    finally:
        assert await stop(first) == 0
        assert await stop(second) == 0
