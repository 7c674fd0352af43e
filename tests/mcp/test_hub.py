"""The hub over two real upstream MCP servers written with the SDK: one stdio process it starts, one HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import signal

import mcp.types as types
import pytest

from gateway.mcp.access import McpAccess
from gateway.mcp.upstream import McpUpstreamError
from tests.mcp.conftest import TRACKER_TOKEN, alive, config, stdio_server


def text(result: types.CallToolResult | types.ReadResourceResult) -> str:
    block = result.contents[0] if isinstance(result, types.ReadResourceResult) else result.content[0]
    assert isinstance(block, types.TextContent | types.TextResourceContents)
    return block.text


def pid_of(result: types.CallToolResult) -> int:
    found = re.search(r"pid (\d+)", text(result))
    assert found
    return int(found.group(1))


@pytest.fixture
async def two(tmp_path, shared_tracker, hubs):
    """A hub over ``files`` (stdio) and ``tracker`` (HTTP, pages of two, with a bearer token)."""
    servers = [
        stdio_server("files", tmp_path / "marker", timeouts={"call": 2}),
        {"name": "tracker", "url": shared_tracker, "headers": {"Authorization": "Bearer ${TRACKER_TOKEN}"}},
    ]
    return hubs(config(servers)), tmp_path / "marker"


async def test_lists_merge_both_servers_prefixed_and_every_page(two):
    hub, _ = two
    tools = [t.name for t in await hub.list_tools()]
    # the HTTP server hands out its five tools two per page: all of them, prefixed, after the stdio ones
    assert tools == [
        *("files__echo", "files__crash", "files__sleep", "files__progress", "files__announce"),
        *("tracker__shout", "tracker__whoami", "tracker__t1", "tracker__t2", "tracker__t3"),
    ]
    assert [p.name for p in await hub.list_prompts()] == ["files__greet", "tracker__summary"]
    resources = [r.uri for r in await hub.list_resources()]
    assert resources == ["note://stdio/readme", "note://http/1", "note://http/2", "note://http/3"]
    assert [t.uri_template for t in await hub.list_resource_templates()] == ["note://http/{id}"]
    assert {h.name: h.state for h in hub.health()} == {"files": "up", "tracker": "up"}


async def test_calls_are_routed_by_prefix_and_uri(two):
    hub, _ = two
    assert text(await hub.call_tool("files__echo", {"text": "hi"})).startswith("hi (pid ")
    assert text(await hub.call_tool("tracker__shout", {"text": "hi"})) == "HI"
    # the configured header, its ${VAR} expanded, reaches the HTTP server
    assert text(await hub.call_tool("tracker__whoami")) == f"Bearer {TRACKER_TOKEN}"
    prompt = await hub.get_prompt("files__greet", {"name": "Ada"})
    assert prompt.messages[0].content.text == "Hello, Ada!"  # type: ignore[union-attr]
    prompt = await hub.get_prompt("tracker__summary", {"topic": "bugs"})
    assert prompt.messages[0].content.text == "Summarize bugs"  # type: ignore[union-attr]
    # resources are read from the server that listed them, even before any list (the hub lists on a miss)
    assert text(await hub.read_resource("note://http/3")) == "contents of note://http/3"
    assert text(await hub.read_resource("note://stdio/readme")) == "read me from stdio"
    # a URI no server listed, but one's template matches, goes to that server
    assert text(await hub.read_resource("note://http/42")) == "contents of note://http/42"
    for bad in ("echo", "nobody__echo", "files__"):
        with pytest.raises(McpUpstreamError) as err:
            await hub.call_tool(bad)
        assert err.value.code == types.INVALID_PARAMS and err.value.message == f"unknown tool: {bad}"
    with pytest.raises(McpUpstreamError) as err:
        await hub.read_resource("note://elsewhere/1")
    assert err.value.code == types.INVALID_PARAMS


async def test_a_strategy_sees_and_calls_only_what_its_globs_grant(two):
    hub, _ = two
    access = McpAccess.compile(["files__echo", "tracker"])
    assert [t.name for t in await hub.list_tools(access.allows)] == [
        *("files__echo", "tracker__shout", "tracker__whoami", "tracker__t1", "tracker__t2", "tracker__t3")
    ]
    assert [p.name for p in await hub.list_prompts(access.allows)] == ["tracker__summary"]
    assert [r.uri for r in await hub.list_resources(access.allows)] == [f"note://http/{i}" for i in (1, 2, 3)]
    with pytest.raises(McpUpstreamError) as err:
        await hub.call_tool("files__crash", allows=access.allows)  # refused here: it would have ended the process
    assert err.value.code == types.INVALID_PARAMS
    assert err.value.message == "tool 'files__crash' is not allowed by this client's strategy"
    assert text(await hub.call_tool("files__echo", {"text": "still up"}, allows=access.allows)).startswith("still up")
    with pytest.raises(McpUpstreamError, match="unknown resource"):
        await hub.read_resource("note://stdio/readme", allows=access.allows)
    assert await hub.list_tools(McpAccess.compile(None).allows) == []


async def test_a_crashed_stdio_server_errors_its_call_and_restarts_on_the_next(two):
    hub, _ = two
    first = pid_of(await hub.call_tool("files__echo", {"text": "a"}))
    with pytest.raises(McpUpstreamError) as err:
        await asyncio.wait_for(hub.call_tool("files__crash"), 10)  # an error, not a hang
    assert err.value.code == types.CONNECTION_CLOSED
    assert "files" in err.value.message
    assert text(await hub.call_tool("tracker__shout", {"text": "unaffected"})) == "UNAFFECTED"
    second = pid_of(await hub.call_tool("files__echo", {"text": "b"}))
    assert second != first and not alive(first)
    assert {h.name: h.state for h in hub.health()} == {"files": "up", "tracker": "up"}


async def test_a_stdio_server_that_dies_idle_is_seen_down_and_the_next_call_restarts_it(two):
    hub, _ = two
    first = pid_of(await hub.call_tool("files__echo", {"text": "a"}))
    os.kill(first, signal.SIGKILL)
    async with asyncio.timeout(5):  # noticed without any call
        while hub.health()[0].state != "down":
            await asyncio.sleep(0.05)
    assert hub.health()[0].last_error == "the session ended"
    assert pid_of(await hub.call_tool("files__echo", {"text": "b"})) != first


async def test_a_call_past_its_timeout_is_answered_with_an_error_and_cancelled_upstream(two):
    hub, marker = two
    loop = asyncio.get_running_loop()
    await hub.call_tool("files__echo", {"text": "started"})
    begun = loop.time()
    with pytest.raises(McpUpstreamError) as err:
        await hub.call_tool("files__sleep", {"seconds": 30})
    assert err.value.code == types.REQUEST_TIMEOUT
    assert err.value.message == "upstream MCP server 'files' did not answer tools/call within 2s (cancelled)"
    assert loop.time() - begun < 10
    async with asyncio.timeout(5):  # the server saw notifications/cancelled and stopped the tool
        while not marker.exists():
            await asyncio.sleep(0.05)
    assert marker.read_text() == "cancelled"
    assert text(await hub.call_tool("files__echo", {"text": "same"})).startswith("same")


async def test_a_caller_that_gives_up_cancels_the_call_upstream(two):
    hub, marker = two
    await hub.call_tool("files__echo", {"text": "started"})
    call = asyncio.create_task(hub.call_tool("files__sleep", {"seconds": 1.8}))  # under the call timeout
    await asyncio.sleep(0.5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    async with asyncio.timeout(5):
        while not marker.exists():
            await asyncio.sleep(0.05)


async def test_progress_notifications_reach_the_callers_callback(two):
    hub, _ = two
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total, message))

    assert text(await hub.call_tool("files__progress", {"steps": 3}, progress=progress)) == "done"
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_a_server_down_or_slow_is_left_out_of_lists_not_failing_them(tmp_path, http_fake, hubs, caplog):
    slow = await http_fake("--list-delay", "5")
    gone = await http_fake()
    await gone.kill()
    servers = [
        stdio_server("files", tmp_path / "marker"),
        {"name": "slow", "url": slow.url, "timeouts": {"call": 1}},
        {"name": "gone", "url": gone.url, "timeouts": {"connect": 2}},
        {"name": "broken", "command": ["/nonexistent/mcp-server"]},
    ]
    hub = hubs(config(servers))
    loop = asyncio.get_running_loop()
    begun = loop.time()
    tools = [t.name for t in await hub.list_tools()]
    assert tools == ["files__echo", "files__crash", "files__sleep", "files__progress", "files__announce"]
    assert loop.time() - begun < 8  # bounded by the slow server's call timeout, not its delay
    health = {h.name: h for h in hub.health()}
    assert health["files"].state == "up" and health["files"].last_error is None
    assert health["slow"].state == "up" and "did not answer tools/list within" in str(health["slow"].last_error)
    assert health["gone"].state == "down" and "cannot reach the server" in str(health["gone"].last_error)
    assert health["broken"].state == "down" and "cannot start the process" in str(health["broken"].last_error)
    assert "mcp server gone: left out of the tools list" in caplog.text
    # while its backoff runs, a down server answers at once
    with pytest.raises(McpUpstreamError) as err:
        await hub.call_tool("broken__anything")
    assert err.value.code == types.CONNECTION_CLOSED


async def test_an_http_server_that_forgot_the_session_gets_a_new_one(http_fake, hubs, http):
    tracker = await http_fake()
    hub = hubs(config([{"name": "tracker", "url": tracker.url}]))
    assert text(await hub.call_tool("tracker__shout", {"text": "one"})) == "ONE"
    async with http.post(tracker.url.replace("/mcp", "/forget")) as resp:
        assert resp.status == 204
    with pytest.raises(McpUpstreamError) as err:  # the server's answer (404: no such session), passed on
        await hub.call_tool("tracker__shout", {"text": "two"})
    assert err.value.code == types.INVALID_REQUEST
    assert text(await hub.call_tool("tracker__shout", {"text": "three"})) == "THREE"  # a ping failed: new session


async def test_an_http_server_that_dies_is_down_and_back_when_it_is(http_fake, hubs):
    tracker = await http_fake()
    hub = hubs(config([{"name": "tracker", "url": tracker.url}]))
    assert text(await hub.call_tool("tracker__shout", {"text": "one"})) == "ONE"
    await tracker.kill()
    with pytest.raises(McpUpstreamError) as err:
        await hub.call_tool("tracker__shout", {"text": "two"})
    assert err.value.code == types.CONNECTION_CLOSED
    assert hub.health()[0].state == "down"
    await tracker.start()  # the same port
    async with asyncio.timeout(10):
        while True:
            try:
                assert text(await hub.call_tool("tracker__shout", {"text": "three"})) == "THREE"
                break
            except McpUpstreamError:
                await asyncio.sleep(0.2)  # the backoff between starts
    assert hub.health()[0].state == "up"


async def test_close_ends_the_stdio_process_and_answers_later_calls(two):
    hub, _ = two
    pid = pid_of(await hub.call_tool("files__echo", {"text": "a"}))
    await hub.close()
    assert not alive(pid)
    with pytest.raises(McpUpstreamError) as err:
        await hub.call_tool("files__echo", {"text": "late"})
    assert err.value.code == types.CONNECTION_CLOSED
    assert {h.state for h in hub.health()} == {"closed"}
