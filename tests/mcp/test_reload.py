"""A reload builds a new hub; the old one closes with its runtime, once the requests pinned to it have finished."""

from __future__ import annotations

import asyncio

import yaml

from gateway.keys import LIVE
from tests.conftest import ALICE
from tests.mcp.conftest import alive, stdio_server
from tests.mcp.test_hub import pid_of, text


async def test_reload_swaps_the_servers_and_the_old_hub_closes_after_its_calls(tmp_path, start_gateway):
    def write(servers: list) -> None:
        data = {
            "server": {"watch_config": False},
            "providers": [{"name": "local", "base_url": "http://127.0.0.1:9/v1", "models": ["m"]}],
            "strategies": [{"name": "default", "allow": ["*"], "mcp": ["*"]}],
            "clients": [{"name": "alice", "secret": ALICE, "strategy": "default"}],
            "usage": {"path": str(tmp_path / "usage.db")},
            "mcp_servers": servers,
        }
        path.write_text(yaml.safe_dump(data))

    path = tmp_path / "localrouter.yaml"
    write([stdio_server("files", tmp_path / "marker")])
    gw = await start_gateway(path)
    live = gw.app[LIVE]
    old = live.current
    assert old.mcp is not None and old.mcp.health()[0].state == "idle"  # nothing started before first use
    pid = pid_of(await old.mcp.call_tool("files__echo", {"text": "a"}))
    old.started()  # as the gate does for a request: this one runs a slow call on the old config
    call = asyncio.create_task(old.mcp.call_tool("files__sleep", {"seconds": 1.5}))
    await asyncio.sleep(0.3)

    write([stdio_server("other", tmp_path / "marker2")])
    assert live.reload()
    new = live.current
    assert new.mcp is not None and list(new.mcp.upstreams) == ["other"]
    await asyncio.sleep(0.2)
    assert old.mcp.health()[0].state == "up" and alive(pid)  # still serving the call in flight

    assert text(await call) == "slept"
    old.finished()
    async with asyncio.timeout(10):  # then the old hub closes, and its server's process with it
        while old.mcp.health()[0].state != "closed" or alive(pid):
            await asyncio.sleep(0.05)
    assert text(await new.mcp.call_tool("other__echo", {"text": "b"})).startswith("b (pid ")

    write([])
    assert live.reload()
    assert live.current.mcp is None  # no mcp_servers: no hub, and the SDK is not even needed
