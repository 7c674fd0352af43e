"""What the gateway tells of its MCP calls beyond the access log: usage summaries by tool, the servers'
health as a gauge, and a span per call."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3

import pytest
from mcp import MCPError
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import ALICE, BOB, bearer
from tests.gateway.test_tracing import Receiver, attrs, run_gateway, url
from tests.mcp.test_inbound import connected, gateway_config
from tests.procs import run


async def test_usage_by_tool_summarises_the_mcp_calls_only(tmp_path, shared_tracker, start_gateway, http):
    gw = await start_gateway(gateway_config(tmp_path, shared_tracker))
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        for word in ("a", "b"):
            await session.call_tool("files__echo", {"text": word})
        await session.call_tool("tracker__shout", {"text": "c"})
        with pytest.raises(MCPError):
            await session.call_tool("files__crash", {})
    body = {"model": "local/m", "messages": [{"role": "user", "content": "hi"}]}
    async with http.post(f"{gw.url}/v1/chat/completions", json=body, headers=bearer()) as resp:
        assert resp.status >= 500  # the provider is unreachable: an inference record, with no tool
    db = tmp_path / "usage.db"
    async with asyncio.timeout(10):  # usage records are written in batches
        while True:
            await asyncio.sleep(0.1)
            with contextlib.closing(sqlite3.connect(db)) as conn:
                if conn.execute("SELECT count(*) FROM usage").fetchone()[0] >= 5:
                    break
    out = await asyncio.to_thread(run, "usage", "--db", str(db), "--by", "tool", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["tool"]: (r["requests"], r["errors"]) for r in json.loads(out.stdout)}
    assert rows == {"files__echo": (2, 0), "tracker__shout": (1, 0), "files__crash": (1, 1)}
    table = (await asyncio.to_thread(run, "usage", "--db", str(db), "--by", "tool")).stdout.splitlines()
    assert table[0].split()[0] == "tool" and table[-1].split()[:2] == ["total", "4"]


async def test_servers_up_gauge_follows_the_hub_at_scrape_time(tmp_path, http_fake, start_gateway, http):
    tracker = await http_fake()
    gw = await start_gateway(gateway_config(tmp_path, tracker.url))

    async def gauges() -> dict[str, float]:
        async with http.get(f"{gw.url}/metrics") as resp:
            assert resp.status == 200
            lines = (await resp.text()).splitlines()
        prefix = 'localrouter_mcp_servers_up{server="'
        return {line[len(prefix) :].split('"')[0]: float(line.split()[-1]) for line in lines if line.startswith(prefix)}

    assert await gauges() == {"files": 0.0, "tracker": 0.0}  # nothing started before first use
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        await session.list_tools()
        assert await gauges() == {"files": 1.0, "tracker": 1.0}
        await tracker.kill()
        with pytest.raises(MCPError):
            await session.call_tool("tracker__shout", {"text": "gone"})
        assert await gauges() == {"files": 1.0, "tracker": 0.0}


async def test_each_mcp_call_is_a_child_span_of_its_request(tmp_path, shared_tracker):
    receiver = await Receiver().start()
    try:
        data = gateway_config(tmp_path, shared_tracker, call_timeout=0.5)
        runner = await run_gateway({**data, "tracing": {"otlp_endpoint": receiver.url, "protocol": "http"}})
        async with connected(f"{url(runner)}/mcp", ALICE) as session:
            await session.list_tools()  # a list is no call: no call span
            await session.call_tool("files__echo", {"text": "a"})
            await session.get_prompt("tracker__summary", {})
            await session.list_resources()
            await session.read_resource("note://stdio/readme")
            with pytest.raises(MCPError):
                await session.call_tool("files__sleep", {"seconds": 30})
        await runner.cleanup()  # flushes the spans
    finally:
        assert receiver.runner is not None
        await receiver.runner.cleanup()

    by_id = {s.span_id: s for s in receiver.spans}
    calls = sorted((s for s in receiver.spans if "mcp.method.name" in attrs(s)), key=lambda s: s.start_time_unix_nano)
    seen = [(s.name, attrs(s)["localrouter.mcp.server"], attrs(s)["localrouter.mcp.status"]) for s in calls]
    assert seen == [
        ("tools/call files__echo", "files", "ok"),
        ("prompts/get tracker__summary", "tracker", "ok"),
        ("resources/read note://stdio/readme", "files", "ok"),
        ("tools/call files__sleep", "files", "timeout"),
    ]
    for span in calls:
        parent = by_id[span.parent_span_id]
        assert parent.kind == Span.SPAN_KIND_SERVER and parent.trace_id == span.trace_id
        assert attrs(parent)["localrouter.endpoint"] == "mcp" and span.kind == Span.SPAN_KIND_CLIENT
        assert attrs(span)["localrouter.mcp.duration_ms"] > 0
    assert calls[0].status.code != calls[0].status.STATUS_CODE_ERROR
    assert calls[-1].status.code == calls[-1].status.STATUS_CODE_ERROR and attrs(calls[-1])["error.type"] == "timeout"


async def test_each_outcome_is_recorded_with_its_own_status_and_no_server_when_none_was_reached(
    tmp_path, shared_tracker, start_gateway, http
):
    gw = await start_gateway(gateway_config(tmp_path, shared_tracker, call_timeout=0.5))
    async with connected(f"{gw.url}/mcp", BOB) as session:
        with pytest.raises(MCPError):
            await session.call_tool("files__sleep", {"seconds": 1})  # hidden from bob's strategy
    async with connected(f"{gw.url}/mcp", ALICE) as session:
        with pytest.raises(MCPError):
            await session.call_tool("nowhere__tool", {})
        with pytest.raises(MCPError):
            await session.read_resource("note://nothing/here")
        with pytest.raises(MCPError):
            await session.call_tool("files__sleep", {"seconds": 30})
        with pytest.raises(MCPError):
            await session.call_tool("files__crash", {})
        assert (await session.call_tool("files__nothing", {})).is_error
    expected = {
        ("bob", "files__sleep"): (403, "refused", None),
        ("alice", "nowhere__tool"): (404, "not_found", None),
        ("alice", "note://nothing/here"): (404, "not_found", None),
        ("alice", "files__sleep"): (504, "timeout", "files"),
        ("alice", "files__crash"): (502, "unavailable", "files"),
        ("alice", "files__nothing"): (200, "tool_error", "files"),
    }
    rows: dict[tuple[str, str], tuple[int, str, str | None]] = {}
    async with asyncio.timeout(10):  # usage records are written in batches
        while len(rows) < len(expected):
            await asyncio.sleep(0.1)
            with contextlib.closing(sqlite3.connect(tmp_path / "usage.db")) as db:
                query = "SELECT client, model_requested, status, error_code, provider FROM usage WHERE endpoint = 'mcp'"
                rows = {(r[0], r[1]): r[2:] for r in db.execute(query)}
    assert rows == expected
    lines = {line["model_requested"]: line for line in gw.access.lines if line.get("endpoint") == "mcp"}
    assert lines["nowhere__tool"]["status"] == 404 and lines["nowhere__tool"]["mcp_server"] is None
    async with http.get(f"{gw.url}/metrics") as resp:
        metrics = await resp.text()
    assert 'localrouter_mcp_calls_total{client="bob",item="other",server="none",status="refused"} 1.0' in metrics
    assert 'localrouter_mcp_calls_total{client="alice",item="other",server="files",status="timeout"} 1.0' in metrics


async def test_invalid_params_of_a_call_are_recorded_as_400(tmp_path, shared_tracker, start_gateway, http):
    gw = await start_gateway(gateway_config(tmp_path, shared_tracker))
    headers = {**bearer(), "Accept": "application/json, text/event-stream"}
    init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    async with http.post(
        f"{gw.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}, headers=headers
    ) as resp:
        headers["Mcp-Session-Id"] = resp.headers["Mcp-Session-Id"]
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"arguments": {}}}  # no name
    async with http.post(f"{gw.url}/mcp", json=call, headers=headers) as resp:
        assert resp.status == 200 and (await resp.json())["error"]["code"] == -32602
    async with asyncio.timeout(10):  # the access log is written out in batches
        while not [line for line in gw.access.lines if line.get("error_code") == "invalid_params"]:
            await asyncio.sleep(0.05)
    line = next(line for line in gw.access.lines if line.get("error_code") == "invalid_params")
    assert line["status"] == 400 and line["endpoint"] == "mcp"
