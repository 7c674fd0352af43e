"""The firewall on MCP calls, with the official SDK's client over real sockets, in front of the stdio fake:
a tool denied (a JSON-RPC error, never reaching the server), a tool asked for and allowed, and a secret in
a call's arguments redacted before the server sees it (its echo says what it got)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client

from gateway.api.mcp import FIREWALL_DENIED
from tests.conftest import ALICE
from tests.firewall.conftest import AWS_KEY, ROOT_SECRET, decide, waiting
from tests.firewall.conftest import audit as audit_records
from tests.mcp.conftest import stdio_server


def mcp_config(tmp_path: Any, secrets: str = "redact") -> dict[str, Any]:
    rules = [{"match": "files__crash", "action": "deny"}, {"match": "files__greet", "action": "ask"}]
    return {
        "providers": [{"name": "local", "base_url": "http://127.0.0.1:9/v1", "models": ["m"]}],
        "strategies": [
            {"name": "agents", "allow": ["*"], "mcp": ["files"], "firewall": rules},
            {"name": "ops", "allow": ["*"]},
        ],
        "clients": [
            {"name": "alice", "secret": ALICE, "strategy": "agents"},
            {"name": "root", "secret": ROOT_SECRET, "strategy": "ops", "admin": True},
        ],
        "mcp_servers": [stdio_server("files", tmp_path / "marker")],
        "firewall": {"secrets": secrets, "ask_timeout": 10},
        "usage": {"path": str(tmp_path / "usage.db")},
    }


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {ALICE}"}, timeout=30) as client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def test_a_denied_tool_an_asked_prompt_and_redacted_arguments(tmp_path, start_gateway, http):
    gw = await start_gateway(mcp_config(tmp_path))
    async with connected(f"{gw.url}/mcp") as session:
        with pytest.raises(MCPError) as caught:
            await session.call_tool("files__crash", {})  # would end the server: it never gets there
        assert caught.value.error.code == FIREWALL_DENIED
        assert "denied by the firewall rule `files__crash`" in caught.value.error.message
        echoed = await session.call_tool("files__echo", {"text": f"use {AWS_KEY} now"})
        said = echoed.content[0].text
        assert said.startswith("use [REDACTED:AWS Access Key] now") and AWS_KEY not in said
        held = asyncio.create_task(session.get_prompt("files__greet", {"name": "Ada"}))
        [approval] = await waiting(http, gw.url)
        assert approval["what"] == "files__greet" and approval["rule"] == "files__greet"
        await decide(http, gw.url, approval["id"], "allow_once")
        prompt = await asyncio.wait_for(held, 10)
        assert "Ada" in prompt.messages[0].content.text
    actions = {(r.subject, r.action) for r in await audit_records(gw)}
    assert actions == {("files__crash", "deny"), ("arguments.text", "redact"), ("files__greet", "allow_once")}


async def test_a_secret_in_a_tool_call_blocks_it(tmp_path, start_gateway):
    gw = await start_gateway(mcp_config(tmp_path, secrets="block"))
    async with connected(f"{gw.url}/mcp") as session:
        with pytest.raises(MCPError) as caught:
            await session.call_tool("files__echo", {"text": f"use {AWS_KEY} now"})
    assert caught.value.error.code == FIREWALL_DENIED
    assert "AWS Access Key in arguments.text" in caught.value.error.message
    assert AWS_KEY not in caught.value.error.message


async def test_calls_refused_before_any_server_are_recorded_as_refused(tmp_path, start_gateway, http):
    """A call the firewall denies, and one over the client's rate limit: each a request record of its own
    (the operator page lists them under 4xx), with no server, never a 200."""
    data = mcp_config(tmp_path)
    data["strategies"][0]["rate_limits"] = [{"requests": 2, "per": "minute"}]
    gw = await start_gateway(data)
    async with connected(f"{gw.url}/mcp") as session:
        with pytest.raises(MCPError):
            await session.call_tool("files__crash", {})  # the firewall: 1 of 2
        await session.call_tool("files__echo", {"text": "hi"})  # 2 of 2
        with pytest.raises(MCPError):
            await session.call_tool("files__echo", {"text": "again"})  # over the limit
    admin = {"Authorization": f"Bearer {ROOT_SECRET}"}
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        async with http.get(f"{gw.url}/admin/api/requests?status=4xx", headers=admin) as resp:
            assert resp.status == 200
            rows = (await resp.json())["requests"]
        if len(rows) >= 2 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    seen = sorted((r["status"], r["error_code"], r["provider"], r["model_requested"]) for r in rows)
    assert seen == [(403, "firewall_denied", None, "files__crash"), (429, "rate_limit_exceeded", None, "files__echo")]
    async with http.get(f"{gw.url}/metrics") as resp:
        metrics = await resp.text()
    assert 'localrouter_mcp_calls_total{client="alice",item="other",server="none",status="refused"} 1.0' in metrics
    assert 'localrouter_mcp_calls_total{client="alice",item="other",server="none",status="rate_limited"} 1.0' in metrics
