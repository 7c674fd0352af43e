"""The admin API when part of the deployment is missing, over real HTTP: the usage store down (Providers
and Clients still answer, with their actions, and /health says the store failed), usage records off (the
answers say so instead of showing zeros), a provider whose model discovery fails (its error, and the
targets the config names for it), a pool's target cooling down; and what a cache hit does to the numbers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from tests.conftest import Gateway, bearer
from tests.fakes.openai_upstream import FakeOpenAI, Script
from tests.gateway.test_admin_api import ADMIN, API, CLOSED, admin_config, chat, flushed, get
from tests.redisserver import free_port

Start = Callable[..., Awaitable[Gateway]]


async def _post(http: aiohttp.ClientSession, gw: Gateway, path: str) -> tuple[int, Any]:
    async with http.post(gw.url + API + path, headers=bearer(ADMIN)) as resp:
        return resp.status, await resp.json()


async def test_store_down_clients_and_providers_answer_with_their_actions_and_health_says_so(
    upstreams: tuple[FakeOpenAI, FakeOpenAI], start_gateway: Start, http: aiohttp.ClientSession
) -> None:
    data = admin_config(*upstreams)
    data["usage"] = {"backend": "postgres", "url": f"postgresql://lr:hidden-pw@127.0.0.1:{free_port()}/lr", "pool": 2}
    gw = await start_gateway(data)
    async with http.get(gw.url + "/health") as resp:
        assert (await resp.json())["usage_store"]["ok"] is True  # nothing written or read yet
    doc = await get(http, gw, "/clients")
    assert doc["records"] is True and "cannot be reached" in doc["store_error"]
    alice = next(c for c in doc["clients"] if c["name"] == "alice")
    assert alice["today"] is None and alice["month"] is None  # unknown, not zero
    assert "hidden-pw" not in str(doc)
    assert await _post(http, gw, "/clients/alice/suspend") == (200, {"name": "alice", "suspended": True})
    assert (await chat(http, gw)).status == 401
    providers = await get(http, gw, "/providers")
    assert "cannot be reached" in providers["store_error"]
    assert {t["latency_ms"]["p50"] for p in providers["providers"] for t in p["targets"]} == {None}
    status, _ = await _post(http, gw, "/targets/openai/gpt-4o-mini/reset")
    assert status == 200
    async with http.get(gw.url + "/health") as resp:
        health = await resp.json()
    assert health["usage_store"]["ok"] is False and health["usage_store"]["read_error"]
    assert health["status"] == "degraded" and "hidden-pw" not in str(health)
    async with http.get(gw.url + API + "/overview", headers=bearer(ADMIN)) as resp:
        assert resp.status == 503  # its numbers are all the store's


async def test_records_off_the_answers_say_so_and_a_lookup_explains(
    upstreams: tuple[FakeOpenAI, FakeOpenAI], start_gateway: Start, http: aiohttp.ClientSession
) -> None:
    gw = await start_gateway(admin_config(*upstreams, usage={"path": None}))
    assert (await chat(http, gw)).status == 200
    overview = await get(http, gw, "/overview")
    assert overview["records"] is False
    for path in ("/clients", "/providers", "/usage", "/requests"):
        doc = await get(http, gw, path)
        assert doc["records"] is False, path
    clients = (await get(http, gw, "/clients"))["clients"]
    assert {c["today"] is None for c in clients} == {True}
    async with http.get(gw.url + API + "/requests/req_anything", headers=bearer(ADMIN)) as resp:
        doc = await resp.json()
    assert (
        resp.status == 404 and doc["error"]["code"] == "records_off" and "usage.path: null" in doc["error"]["message"]
    )


async def test_a_provider_whose_discovery_fails_shows_why_and_the_targets_the_config_names(
    upstreams: tuple[FakeOpenAI, FakeOpenAI], start_gateway: Start, http: aiohttp.ClientSession
) -> None:
    data = admin_config(*upstreams, pools=[{"name": "mini", "targets": ["backup/gpt-4o-mini", "backup/pooled"]}])
    data["providers"][1]["base_url"] = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: discovery fails
    data["providers"][1]["cooldown"] = {"failures": 1, "seconds": 300}
    data["strategies"][0]["aliases"] = {"cheap": "backup/aliased"}
    data["strategies"][0]["allow"].append("pool/*")
    gw = await start_gateway(data)
    backup: dict[str, Any] = {}
    for _ in range(100):
        backup = next(p for p in (await get(http, gw, "/providers"))["providers"] if p["name"] == "backup")
        if backup["reachable"] is False:
            break
        await asyncio.sleep(0.05)
    assert backup["reachable"] is False and backup["error"]
    assert [t["id"] for t in backup["targets"]] == ["backup/aliased", "backup/gpt-4o-mini", "backup/pooled"]
    assert {t["breaker"]["state"] for t in backup["targets"]} == {"closed"}
    upstreams[0].default = Script(status=500)  # the fallback to backup fails too: its breaker opens
    assert (await chat(http, gw)).status >= 500
    targets = {t["id"]: t for p in (await get(http, gw, "/providers"))["providers"] for t in p["targets"]}
    assert targets["backup/gpt-4o-mini"]["breaker"]["state"] == "open"
    status, doc = await _post(http, gw, "/targets/backup/gpt-4o-mini/reset")
    assert status == 200 and doc["breaker"] == CLOSED
    assert (await _post(http, gw, "/targets/backup/aliased/reset"))[0] == 200  # named by the config
    assert (await _post(http, gw, "/targets/backup/nothing/reset"))[0] == 404


async def test_a_cooling_pool_target_shows_its_breaker(
    upstreams: tuple[FakeOpenAI, FakeOpenAI], start_gateway: Start, http: aiohttp.ClientSession
) -> None:
    data = admin_config(*upstreams, pools=[{"name": "mini", "targets": ["openai/gpt-4o-mini", "backup/gpt-4o-mini"]}])
    data["providers"][0]["cooldown"] = {"failures": 1, "seconds": 300}
    data["strategies"][0]["allow"].append("pool/*")
    gw = await start_gateway(data)
    upstreams[0].default = Script(status=500)
    assert (await chat(http, gw, model="pool/mini")).status == 200  # the next in the pool answered
    [pool] = (await get(http, gw, "/providers"))["pools"]
    breakers = {t["id"]: t["breaker"]["state"] for t in pool["targets"]}
    assert breakers == {"openai/gpt-4o-mini": "open", "backup/gpt-4o-mini": "closed"}


async def test_cache_hits_costs_latency_and_the_model_filter(
    upstreams: tuple[FakeOpenAI, FakeOpenAI], start_gateway: Start, http: aiohttp.ClientSession
) -> None:
    """A hit is marked (cached, saved_usd) and counted in usage (cached_requests); a target's median
    latency is its upstream's (hits left out); a client with no request costs $0, not "unpriced"; the
    model filter also matches the id asked for (a pool, an alias)."""
    data = admin_config(*upstreams, pools=[{"name": "mini", "targets": ["openai/gpt-4o-mini"]}])
    data["strategies"][0] |= {"cache": True, "aliases": {"cheap": "openai/gpt-4o-mini"}}
    data["strategies"][0]["allow"].append("pool/*")
    data["providers"][0]["prices"] = {"gpt-4o-mini": {"input_per_1m": 1.0, "output_per_1m": 2.0}}
    gw = await start_gateway(data)
    upstreams[0].default = Script(delay=0.3)  # every upstream answer; a hit takes no time
    answers = [await chat(http, gw) for _ in range(5)]
    assert [r.headers["x-localrouter-cache"] for r in answers] == ["miss", "hit", "hit", "hit", "hit"]
    hit_id = answers[1].headers["X-Request-ID"]
    assert (await chat(http, gw, model="pool/mini", messages=[{"role": "user", "content": "pool"}])).status == 200
    assert (await chat(http, gw, model="cheap", messages=[{"role": "user", "content": "alias"}])).status == 200
    await flushed(gw)
    hit = await get(http, gw, f"/requests/{hit_id}")
    assert hit["cached"] is True and hit["cost_usd"] == 0 and hit["saved_usd"] > 0
    [row] = (await get(http, gw, "/usage?by=client"))["rows"]
    assert row["cached_requests"] == 4 and row["saved_usd"] == 4 * hit["saved_usd"]
    targets = {t["id"]: t for p in (await get(http, gw, "/providers"))["providers"] for t in p["targets"]}
    assert targets["openai/gpt-4o-mini"]["latency_ms"]["p50"] >= 250  # the misses', not the hits'
    bob = next(c for c in (await get(http, gw, "/clients"))["clients"] if c["name"] == "bob")
    assert bob["today"] == {"requests": 0, "total_tokens": 0, "cost_usd": 0.0}
    for model in ("pool/mini", "cheap"):
        found = (await get(http, gw, f"/requests?model={model}"))["requests"]
        assert [(r["model_requested"], r["model"]) for r in found] == [(model, "openai/gpt-4o-mini")], model
    assert len((await get(http, gw, "/requests?model=openai/gpt-4o-mini"))["requests"]) == 7
