"""A metric's ``item`` label names only a tool or prompt its server listed: made-up names, answered by a
server that answers any name (the HTTP fake, as many low-level servers do), mint no series. Plain JSON-RPC
here: the SDK's client lists the tools by itself after a call."""

from __future__ import annotations

import uuid

from tests.firewall.test_mcp_held_e2e import Rpc
from tests.mcp.test_inbound import gateway_config


async def test_only_names_a_server_listed_are_labels(tmp_path, shared_tracker, start_gateway, http):
    gw = await start_gateway(gateway_config(tmp_path, shared_tracker))
    rpc = await Rpc(http, gw.url).initialize()
    made_up = [f"tracker__{uuid.uuid4().hex}" for _ in range(5)]

    async def call(rid: int, name: str) -> None:
        status, answer = await rpc.post({"id": rid, "method": "tools/call", "params": {"name": name}})
        assert status == 200 and "result" in answer  # the fake answers any name

    for rid, name in enumerate(made_up, 1):
        await call(rid, name)
    await call(10, "tracker__shout")  # real, but no list seen since the start
    assert (await rpc.post({"id": 11, "method": "tools/list"}))[0] == 200
    await call(12, "tracker__shout")
    await call(13, made_up[0])
    async with http.get(f"{gw.url}/metrics") as resp:
        series = [line for line in (await resp.text()).splitlines() if line.startswith("localrouter_mcp_calls_total")]
    assert not [line for line in series if any(name in line for name in made_up)]
    labelled = {line.split('item="')[1].split('"')[0]: float(line.split()[-1]) for line in series}
    assert labelled == {"other": 7.0, "tracker__shout": 1.0}
