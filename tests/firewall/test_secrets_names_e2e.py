"""Secrets where no prompt is: in an MCP call's name or a resource's URI (refused under ``block`` and under
``redact``, since a rewritten name would name another item; under ``log`` let through and recorded without
it), and the record of a refused streaming ``/v1/messages`` request (what the client asked: a stream)."""

from __future__ import annotations

import asyncio

import pytest
from mcp import MCPError

from gateway.api.mcp import FIREWALL_DENIED
from tests.conftest import ALICE
from tests.firewall.conftest import AWS_KEY, config
from tests.firewall.test_mcp_e2e import connected, mcp_config


@pytest.mark.parametrize("mode", ["block", "redact"])
async def test_a_secret_in_a_uri_or_a_name_is_refused(tmp_path, start_gateway, mode):
    gw = await start_gateway(mcp_config(tmp_path, secrets=mode))
    async with connected(f"{gw.url}/mcp") as session:
        with pytest.raises(MCPError) as read:
            await session.read_resource(f"note://stdio/{AWS_KEY}")
        with pytest.raises(MCPError) as called:
            await session.call_tool(f"files__{AWS_KEY}", {})
        with pytest.raises(MCPError) as prompted:
            await session.get_prompt(f"files__{AWS_KEY}", {})
    assert read.value.error.code == called.value.error.code == prompted.value.error.code == FIREWALL_DENIED
    assert "AWS Access Key in uri" in read.value.error.message
    assert "AWS Access Key in name" in called.value.error.message
    for caught in (read, called, prompted):
        assert AWS_KEY not in caught.value.error.message
    async with asyncio.timeout(10):  # the access log is written out in batches
        while len([line for line in gw.access.lines if line.get("model_requested")]) < 3:
            await asyncio.sleep(0.05)
    shown = {line["model_requested"] for line in gw.access.lines if line.get("model_requested")}
    assert shown == {"note://stdio/[REDACTED:AWS Access Key]", "files__[REDACTED:AWS Access Key]"}


async def test_a_secret_in_a_name_under_log_goes_on_and_is_recorded_without_it(tmp_path, start_gateway):
    gw = await start_gateway(mcp_config(tmp_path, secrets="log"))
    async with connected(f"{gw.url}/mcp") as session:
        answered = await session.call_tool(f"files__{AWS_KEY}", {})  # it reached the server
    assert answered.is_error  # the server's own "no such tool"
    async with asyncio.timeout(10):
        while not [line for line in gw.access.lines if line.get("model_requested")]:
            await asyncio.sleep(0.05)
    [line] = [line for line in gw.access.lines if line.get("model_requested")]
    assert line["model_requested"] == "files__[REDACTED:AWS Access Key]"


async def test_a_denied_streaming_messages_request_is_recorded_as_a_stream(fake_upstream, start_gateway, http):
    fake = await fake_upstream("primary", models=("gpt-4o-mini", "gpt-4o", "o1"))
    gw = await start_gateway(config(fake.base_url))
    body = {"model": "openai/o1", "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with http.post(f"{gw.url}/v1/messages", json=body, headers={"x-api-key": ALICE}) as resp:
        assert resp.status == 403 and (await resp.json())["error"]["type"] == "permission_error"
    async with asyncio.timeout(10):
        while not [line for line in gw.access.lines if line.get("endpoint") == "messages"]:
            await asyncio.sleep(0.05)
    [line] = [line for line in gw.access.lines if line.get("endpoint") == "messages"]
    assert line["status"] == 403 and line["stream"] is True
