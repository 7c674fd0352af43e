"""What one stream owns for its lifetime (gateway.routing.stream): its place in the gauge of streams in
flight, given back however it ends, and its target's breaker verdict, which a client that leaves never
turns into a verdict on the upstream."""

from __future__ import annotations

import asyncio

from tests.conftest import bearer, sse_events, standard_config
from tests.fakes.openai_upstream import Script
from tests.gateway.test_observability import samples, value

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
GAUGE = "localrouter_streams_in_flight"


async def in_flight(http, gw) -> float:
    async with http.get(gw.url + "/metrics") as resp:
        return value(samples(await resp.text()), GAUGE)


async def settles(http, gw, expected: float) -> float:
    """The gauge once it reads ``expected``, or what it still reads after a few seconds."""
    for _ in range(50):
        found = await in_flight(http, gw)
        if found == expected:
            return found
        await asyncio.sleep(0.1)
    return found


async def test_the_gauge_holds_a_stream_while_it_is_relayed_however_it_ends(gw, http, upstreams):
    primary, _ = upstreams
    endings = [(Script(chunks=20, chunk_delay=0.1), True), (Script(chunks=5, chunk_delay=0.2, cut_after=3), False)]
    for script, leaves in endings:  # the client leaves; the upstream fails mid-way
        primary.queue(script)
        async with http.post(gw.url + "/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
            assert resp.status == 200
            await resp.content.readline()
            assert await in_flight(http, gw) == 1
            if leaves:
                resp.close()
            else:
                events = await sse_events(resp)
                assert events[-2]["error"]["code"] == "stream_interrupted"
        assert await settles(http, gw, 0) == 0
    primary.queue(Script())
    async with http.post(gw.url + "/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
        assert (await sse_events(resp))[-1] == "[DONE]"
    assert await in_flight(http, gw) == 0


async def test_a_probe_whose_client_leaves_lets_the_next_request_probe(upstreams, start_gateway, http):
    primary, _ = upstreams
    data = standard_config(*upstreams)
    data["providers"][0]["cooldown"] = {"failures": 1, "seconds": 1}
    gw = await start_gateway(data)
    primary.queue(Script(status=500))  # the breaker opens
    async with http.post(gw.url + "/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.headers["x-localrouter-provider"] == "backup"
    await asyncio.sleep(1.1)
    primary.queue(Script(chunks=50, chunk_delay=0.1))  # half-open: this stream is the probe
    async with http.post(gw.url + "/chat/completions", json={**CHAT, "stream": True}, headers=bearer()) as resp:
        assert resp.headers["x-localrouter-provider"] == "openai"
        await resp.content.readline()
        resp.close()  # the client leaves: nothing was learnt about the target
    for _ in range(50):
        if primary.open_streams == 0:
            break
        await asyncio.sleep(0.1)
    assert primary.open_streams == 0
    # the probe was given up, not left taken: the next request may probe (it would skip a probed target)
    async with http.post(gw.url + "/chat/completions", json=CHAT, headers=bearer()) as resp:
        assert resp.status == 200 and resp.headers["x-localrouter-provider"] == "openai"
