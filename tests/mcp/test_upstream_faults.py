"""Upstream servers that hang, die or never start, seen through the gateway's MCP endpoint with the official SDK
client: lists leave them out without waiting on them each time, and /health tells why, briefly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mcp import MCPError

from gateway.mcp.upstream import REASON_MAX, McpUpstreamError, Upstream
from tests.conftest import ALICE
from tests.mcp.conftest import config
from tests.mcp.test_inbound import connected, gateway_config

HUNG_CALL_TIMEOUT = 6


async def servers(http, gw) -> dict[str, Any]:
    async with http.get(f"{gw.url}/health?detail=1") as resp:
        return {s["name"]: s for s in (await resp.json())["mcp_servers"]}


async def test_a_hung_server_is_waited_for_once_then_left_out_at_once(
    tmp_path, shared_tracker, http_fake, start_gateway, http
):
    hung = await http_fake("--list-delay", "120")
    data = gateway_config(tmp_path, shared_tracker)
    data["mcp_servers"].append({"name": "hung", "url": hung.url, "timeouts": {"call": HUNG_CALL_TIMEOUT}})
    gw = await start_gateway(data)
    loop = asyncio.get_running_loop()
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        first = {t.name for t in (await session.list_tools()).tools}  # waits for the hung one's call timeout
        assert "tracker__shout" in first and "files__echo" in first and not any(n.startswith("hung__") for n in first)
        for _ in range(3):
            begun = loop.time()
            tools = {t.name for t in (await session.list_tools()).tools}
            prompts = {p.name for p in (await session.list_prompts()).prompts}
            assert loop.time() - begun < HUNG_CALL_TIMEOUT / 2  # not waiting on the hung server again
            assert tools == first and prompts == {"files__greet", "tracker__summary"}
    hung_health = (await servers(http, gw))["hung"]
    assert f"did not answer tools/list within {HUNG_CALL_TIMEOUT}s" in hung_health["last_error"]


async def test_a_server_left_out_of_lists_is_listed_again_once_it_answers(tmp_path, http_fake, start_gateway):
    tracker = await http_fake()
    gw = await start_gateway(gateway_config(tmp_path, tracker.url))
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        assert "tracker__shout" in {t.name for t in (await session.list_tools()).tools}
        await tracker.kill()
        names = {t.name for t in (await session.list_tools()).tools}
        assert "files__echo" in names and "tracker__shout" not in names
        await tracker.start()  # the same port
        async with asyncio.timeout(20):  # a list in the background finds it answering again
            while "tracker__shout" not in {t.name for t in (await session.list_tools()).tools}:
                await asyncio.sleep(0.2)


async def test_last_error_keeps_the_reason_never_the_message_around_it(tmp_path, shared_tracker, start_gateway, http):
    data = gateway_config(tmp_path, shared_tracker)
    data["mcp_servers"].append({"name": "broken", "command": ["/nonexistent/mcp-server"], "timeouts": {"connect": 1}})
    gw = await start_gateway(data)
    lengths = set()
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        loop = asyncio.get_running_loop()
        until = loop.time() + 5  # its restarts' backoff grows meanwhile; some lists ask it again
        while loop.time() < until:
            assert "tracker__shout" in {t.name for t in (await session.list_tools()).tools}
            with pytest.raises(MCPError) as caught:
                await session.call_tool("broken__anything", {})
            lengths.add(len(caught.value.error.message))
            await asyncio.sleep(0.1)
    last_error = (await servers(http, gw))["broken"]["last_error"]
    assert last_error.startswith("cannot start the process: ") and "is down" not in last_error
    assert max(lengths) < 200  # never nesting the previous message


async def test_last_error_is_bounded(tmp_path):
    upstream = Upstream(config([{"name": "chatty", "command": ["/nonexistent/mcp-server"]}]).mcp_servers[0])
    upstream.note(McpUpstreamError(-32603, "upstream said: " + "x" * 10_000))
    last_error = upstream.health().last_error
    assert last_error is not None and len(last_error) <= REASON_MAX and last_error.startswith("upstream said: x")
