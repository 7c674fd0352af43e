"""The gateway as an MCP server, driven by the official SDK's Streamable HTTP client over real sockets,
in front of two real upstream MCP servers (the stdio fake it starts, the HTTP fake as a process)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anyio
import httpx2
import mcp.types as types
import pytest
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import ALICE, BOB, bearer
from tests.mcp.conftest import stdio_server

CAROL = "lr-carol-secret-0123456789abcdef"  # a strategy without ``mcp``
DAVE = "lr-dave-secret-0123456789abcdefgh"  # two requests a minute


def gateway_config(tmp_path: Any, tracker: str, call_timeout: float = 3) -> dict[str, Any]:
    return {
        "providers": [{"name": "local", "base_url": "http://127.0.0.1:9/v1", "models": ["m"]}],
        "strategies": [
            {"name": "all", "allow": ["*"], "mcp": ["*"], "rate_limits": [{"requests": 100, "per": "minute"}]},
            {"name": "no-sleep", "allow": ["*"], "mcp": ["files__echo", "files__sleep_*", "tracker"]},
            {"name": "models-only", "allow": ["*"]},
            {"name": "tight", "allow": ["*"], "mcp": ["*"], "rate_limits": [{"requests": 2, "per": "minute"}]},
        ],
        "clients": [
            {"name": "alice", "secret": ALICE, "strategy": "all"},
            {"name": "bob", "secret": BOB, "strategy": "no-sleep"},
            {"name": "carol", "secret": CAROL, "strategy": "models-only"},
            {"name": "dave", "secret": DAVE, "strategy": "tight"},
        ],
        "mcp_servers": [
            stdio_server("files", tmp_path / "marker", timeouts={"call": call_timeout}),
            {"name": "tracker", "url": tracker},
        ],
        "usage": {"path": str(tmp_path / "usage.db")},
    }


@pytest.fixture
async def gw(tmp_path, shared_tracker, start_gateway):
    return await start_gateway(gateway_config(tmp_path, shared_tracker))


@asynccontextmanager
async def connected(url: str, token: str) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def text(result: Any) -> str:
    block = result.contents[0] if isinstance(result, types.ReadResourceResult) else result.content[0]
    return str(block.text)


async def test_lists_and_calls_across_both_servers_with_a_client_secret(gw):
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        tools = [t.name for t in (await session.list_tools()).tools]
        assert {"files__echo", "files__sleep", "tracker__shout", "tracker__t3"} <= set(tools)
        assert text(await session.call_tool("files__echo", {"text": "hi"})).startswith("hi (pid ")
        assert text(await session.call_tool("tracker__shout", {"text": "hi"})) == "HI"
        prompts = [p.name for p in (await session.list_prompts()).prompts]
        assert prompts == ["files__greet", "tracker__summary"]
        prompt = await session.get_prompt("files__greet", {"name": "Ada"})
        assert "Hello, Ada!" in prompt.messages[0].content.text
        uris = [str(r.uri) for r in (await session.list_resources()).resources]
        assert "note://stdio/readme" in uris and "note://http/2" in uris
        templates = (await session.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["note://http/{id}"]
        assert text(await session.read_resource("note://http/2"))
        await session.send_ping()
    wanted = {("files", "files__echo"), ("tracker", "tracker__shout"), ("files", "files__greet")}
    wanted |= {("tracker", "note://http/2")}
    async with asyncio.timeout(10):  # the access log is written out in batches
        while not wanted <= {(line.get("mcp_server"), line["model_requested"]) for line in gw.access.lines}:
            await asyncio.sleep(0.05)
    line = next(line for line in gw.access.lines if line["model_requested"] == "files__echo")
    assert line["client"] == "alice" and line["status"] == 200 and "request_body" not in line


async def test_an_access_token_works_and_the_root_serves_mcp_beside_the_openai_api(gw, http):
    async with http.post(
        f"{gw.url}/oauth/token", data={"grant_type": "client_credentials", "client_id": "alice", "client_secret": ALICE}
    ) as resp:
        assert resp.status == 200
        token = (await resp.json())["access_token"]
    async with connected(f"{gw.url}/", token) as session:
        assert text(await session.call_tool("tracker__shout", {"text": "root"})) == "ROOT"
    async with http.get(f"{gw.url}/models", headers=bearer()) as resp:
        assert resp.status == 200 and (await resp.json())["object"] == "list"
    async with http.get(f"{gw.url}/", headers=bearer()) as resp:
        assert resp.status == 404  # a plain GET of the root is still no endpoint


async def test_strategy_hides_and_refuses(gw):
    async with connected(f"{gw.url}/mcp", BOB) as session:
        tools = {t.name for t in (await session.list_tools()).tools}
        assert "files__echo" in tools and "tracker__shout" in tools
        assert "files__sleep" not in tools and "files__crash" not in tools
        with pytest.raises(MCPError) as caught:
            await session.call_tool("files__crash", {})
        assert caught.value.error.code == types.INVALID_PARAMS
        assert "not allowed by this client's strategy" in caught.value.error.message


async def test_a_strategy_without_mcp_gets_403_in_the_openai_shape(gw, http):
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    async with http.post(f"{gw.url}/mcp", json=body, headers=bearer(CAROL)) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "mcp_not_allowed"


async def test_progress_reaches_the_client_and_a_hanging_tool_times_out(gw):
    seen: list[tuple[float, float | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total))

    async with connected(f"{gw.url}/mcp", ALICE) as session:
        result = await session.call_tool("files__progress", {"steps": 3}, progress_callback=progress)
        assert text(result) == "done"
        assert seen == [(1, 3), (2, 3), (3, 3)]
        with pytest.raises(MCPError) as caught:
            await session.call_tool("files__sleep", {"seconds": 30})
        assert caught.value.error.code == types.REQUEST_TIMEOUT


async def test_transport_errors(gw, http):
    async with http.post(f"{gw.url}/mcp", json=[{"jsonrpc": "2.0", "id": 1, "method": "ping"}], headers=bearer()) as r:
        assert r.status == 400 and "Batches" in (await r.json())["error"]["message"]
    async with http.post(f"{gw.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=bearer()) as r:
        assert r.status == 400 and "Mcp-Session-Id" in (await r.json())["error"]["message"]
    headers = {**bearer(), "Mcp-Session-Id": "nope"}
    async with http.post(f"{gw.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers) as r:
        assert r.status == 404


async def test_401_points_to_the_oauth_metadata(gw, http):
    async with http.post(f"{gw.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}) as resp:
        assert resp.status == 401
        challenge = resp.headers["WWW-Authenticate"]
    assert challenge == f'Bearer resource_metadata="{gw.url}/.well-known/oauth-protected-resource/mcp"'
    async with http.get(f"{gw.url}/.well-known/oauth-protected-resource/mcp") as resp:
        resource = await resp.json()
    assert resource["authorization_servers"] == [gw.url]
    async with http.get(f"{gw.url}/.well-known/oauth-authorization-server") as resp:
        server = await resp.json()
    assert server["token_endpoint"] == f"{gw.url}/oauth/token"
    assert server["grant_types_supported"] == ["client_credentials"]
    async with aiohttp.ClientSession() as other, other.get(f"{gw.url}/models") as resp:
        assert resp.status == 401 and "WWW-Authenticate" not in resp.headers  # only the MCP paths carry it


async def test_calls_are_counted_recorded_and_rate_limited(gw, http, tmp_path):
    async with connected(f"{gw.url}/mcp", DAVE) as session:
        await session.list_tools()  # a list is no tool call: not counted
        assert text(await session.call_tool("files__echo", {"text": "a"})).startswith("a ")
        made_up = await session.call_tool("files__nothing", {})  # its name must never become a label
        assert made_up.is_error
        with pytest.raises(MCPError) as caught:
            await session.call_tool("files__echo", {"text": "b"})
        assert "rate limit" in caught.value.error.message.lower()
    async with http.get(f"{gw.url}/metrics") as resp:
        metrics = await resp.text()
    assert 'localrouter_mcp_calls_total{client="dave",item="files__echo",server="files",status="ok"} 1.0' in metrics
    assert 'localrouter_mcp_calls_total{client="dave",item="other",server="files",status="tool_error"} 1.0' in metrics
    assert "files__nothing" not in metrics
    rows: list[tuple[Any, ...]] = []
    async with asyncio.timeout(10):  # usage records are written in batches
        while len(rows) < 3:
            await asyncio.sleep(0.1)
            with contextlib.closing(sqlite3.connect(tmp_path / "usage.db")) as db:
                query = "SELECT model_requested, provider, status, error_code FROM usage WHERE endpoint = 'mcp'"
                rows = sorted(db.execute(query).fetchall(), key=repr)
    assert rows == sorted(
        [
            ("files__echo", "files", 200, None),
            ("files__nothing", "files", 200, "tool_error"),
            ("files__echo", None, 429, "rate_limit_exceeded"),  # refused before any server: recorded too
        ],
        key=repr,
    )
    async with http.get(f"{gw.url}/health?detail=1") as resp:
        servers = {s["name"]: s for s in (await resp.json())["mcp_servers"]}
    assert servers["files"]["state"] == "up" and set(servers) == {"files", "tracker"}


async def test_a_cancelled_call_is_cancelled_upstream(tmp_path, shared_tracker, start_gateway):
    gw = await start_gateway(gateway_config(tmp_path, shared_tracker, call_timeout=60))
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        with anyio.move_on_after(2):
            await session.call_tool("files__sleep", {"seconds": 60})
        async with asyncio.timeout(20):  # far less than the call's own 60-second timeout
            while not (tmp_path / "marker").exists():
                await asyncio.sleep(0.05)
        assert text(await session.call_tool("files__echo", {"text": "after"})).startswith("after ")
