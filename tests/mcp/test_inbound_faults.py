"""Faults seen end to end through the gateway's MCP endpoint, with the official SDK client: an upstream
that dies mid-call, a tool that hangs, a reload that removes a server."""

from __future__ import annotations

import re
from typing import Any

import mcp.types as types
import pytest
import yaml
from mcp import MCPError

from gateway.keys import LIVE
from tests.conftest import ALICE
from tests.mcp.test_inbound import connected, gateway_config, text


def pid(result: Any) -> int:
    found = re.search(r"pid (\d+)", text(result))
    assert found is not None
    return int(found.group(1))


async def test_a_crashed_stdio_server_is_an_error_then_restarts_while_the_http_server_works(
    tmp_path, shared_tracker, start_gateway
):
    gw = await start_gateway(gateway_config(tmp_path, shared_tracker))
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        before = pid(await session.call_tool("files__echo", {"text": "a"}))
        with pytest.raises(MCPError) as caught:
            await session.call_tool("files__crash", {})
        assert caught.value.error.code == types.CONNECTION_CLOSED
        assert text(await session.call_tool("tracker__shout", {"text": "still"})) == "STILL"
        after = pid(await session.call_tool("files__echo", {"text": "b"}))  # restarted on this call
        assert after != before


async def test_a_hanging_tool_past_the_call_timeout_is_an_error(tmp_path, shared_tracker, start_gateway):
    gw = await start_gateway(gateway_config(tmp_path, shared_tracker, call_timeout=0.5))
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        with pytest.raises(MCPError) as caught:
            await session.call_tool("files__sleep", {"seconds": 30})
        assert caught.value.error.code == types.REQUEST_TIMEOUT
        assert "within 0.5s" in caught.value.error.message
        assert text(await session.call_tool("files__echo", {"text": "next"})).startswith("next ")


async def test_a_reload_that_removes_a_server_removes_its_tools(tmp_path, shared_tracker, start_gateway):
    path = tmp_path / "localrouter.yaml"
    data = {"server": {"watch_config": False}, **gateway_config(tmp_path, shared_tracker)}
    path.write_text(yaml.safe_dump(data))
    gw = await start_gateway(path)
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        names = {t.name for t in (await session.list_tools()).tools}
        assert "files__echo" in names and "tracker__shout" in names
        data["mcp_servers"] = [s for s in data["mcp_servers"] if s["name"] != "files"]
        data["strategies"][1]["mcp"] = ["tracker"]  # a glob naming no server is refused
        path.write_text(yaml.safe_dump(data))
        assert gw.app[LIVE].reload()
        names = {t.name for t in (await session.list_tools()).tools}
        assert "tracker__shout" in names and not any(n.startswith("files__") for n in names)
        with pytest.raises(MCPError) as caught:
            await session.call_tool("files__echo", {"text": "gone"})
        assert caught.value.error.code == types.INVALID_PARAMS
