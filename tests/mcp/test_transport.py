"""The Streamable HTTP transport's edges, on the wire (raw requests: the SDK client never sends these)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import bearer
from tests.mcp.test_inbound import gateway_config

VERSION = "2025-11-25"
HEADERS = {**bearer(), "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": VERSION}


@pytest.fixture
async def session(tmp_path, shared_tracker, start_gateway, http) -> tuple[Any, dict[str, str]]:
    gw = await start_gateway(gateway_config(tmp_path, shared_tracker))
    params = {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
    async with http.post(f"{gw.url}/mcp", json=body, headers=HEADERS) as resp:
        assert resp.status == 200
        return gw, {**HEADERS, "Mcp-Session-Id": resp.headers["Mcp-Session-Id"]}


async def rpc(http, gw, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{gw.url}/mcp", json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_a_request_with_a_null_id_is_invalid_not_a_notification(session, http):
    gw, headers = session
    status, answer = await rpc(http, gw, headers, {"jsonrpc": "2.0", "id": None, "method": "ping"})
    assert status == 400 and answer["error"]["code"] == -32600 and answer["id"] is None
    async with http.post(f"{gw.url}/mcp", json={"jsonrpc": "2.0", "method": "notifications/x"}, headers=headers) as r:
        assert r.status == 202  # without an id at all: a notification


async def test_a_body_not_sent_as_json_is_415_with_a_json_rpc_error(session, http):
    gw, headers = session
    body = b'{"jsonrpc": "2.0", "id": 2, "method": "ping"}'
    async with http.post(f"{gw.url}/mcp", data=body, headers={**headers, "Content-Type": "text/plain"}) as resp:
        assert resp.status == 415
        assert (await resp.json())["error"]["code"] == -32600


async def test_a_protocol_version_other_than_the_negotiated_one_says_so(session, http):
    gw, headers = session
    status, answer = await rpc(
        http, gw, {**headers, "MCP-Protocol-Version": "2025-06-18"}, {"jsonrpc": "2.0", "id": 3, "method": "ping"}
    )
    assert status == 400
    assert answer["error"]["message"].endswith(
        "MCP-Protocol-Version 2025-06-18 does not match the negotiated version 2025-11-25"
    )


async def test_invalid_params_name_only_the_methods_own_fields(session, http):
    gw, headers = session
    call = {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": 5, "arguments": {}}}
    status, answer = await rpc(http, gw, headers, call)
    message = answer["error"]["message"]
    assert status == 200 and answer["error"]["code"] == -32602
    assert message.startswith("Invalid params for tools/call: name: ") and "method" not in message.partition(":")[2]


@pytest.mark.parametrize("cursor", ["\u0967\u0966\u0966", "\uff11", "-1", "1.0"])  # Devanagari, fullwidth digits
async def test_a_cursor_is_ascii_digits_only(session, http, cursor):
    gw, headers = session
    body = {"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {"cursor": cursor}}
    status, answer = await rpc(http, gw, headers, body)
    assert status == 200 and answer["error"]["code"] == -32602 and "Invalid cursor" in answer["error"]["message"]
