"""Pools over real HTTP: a pool is a model id (``pool/NAME``) whose targets are fake upstreams on loopback;
each rule's distribution, fallback inside a pool and after it, the SDK, /models, metrics and reload."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import yaml

from gateway import config as gwconfig
from gateway.keys import LIVE
from providers.registry import TYPES
from tests.conftest import ALICE, ENV, Gateway, bearer
from tests.fakes.openai_upstream import USAGE, FakeOpenAI, Script

POOL = "pool/gpt-4o"
NAMES = ("east", "west", "oa")
TARGETS = [f"{name}/gpt-4o" for name in NAMES]


def chat(model: str = POOL, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


def config(fakes: dict[str, FakeOpenAI], pool: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """One provider per fake (each serving ``gpt-4o``), the pool, and a client that may use it."""
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0},
        "providers": [
            {
                "name": name,
                "base_url": fake.base_url,
                "api_key": f"sk-{name}-upstream-key",
                "models": ["gpt-4o"],
                "timeouts": {"first_byte": 5, "idle": 30},
                "cooldown": {"failures": 0},
            }
            for name, fake in fakes.items()
        ],
        "pools": [{"name": "gpt-4o", "targets": [f"{name}/gpt-4o" for name in fakes if name in NAMES], **pool}],
        "strategies": [{"name": "default", "allow": ["pool/*", "east/*"]}],
        "clients": [{"name": "alice", "secret": "${ALICE_SECRET}", "strategy": "default"}],
    }
    data.update(overrides)
    return data


@pytest.fixture
async def fakes(fake_upstream: Callable[..., Awaitable[FakeOpenAI]]) -> dict[str, FakeOpenAI]:
    return {name: await fake_upstream(name, models=("gpt-4o",)) for name in (*NAMES, "backup")}


def calls(fake: FakeOpenAI) -> int:
    return sum(r.path.endswith("/chat/completions") for r in fake.received)


async def post(http: aiohttp.ClientSession, gw: Gateway, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    async with http.post(gw.url + "/v1/chat/completions", json=body, headers=bearer()) as resp:
        return resp.status, dict(resp.headers), await resp.json()


async def served_by(http: aiohttp.ClientSession, gw: Gateway, n: int, concurrency: int = 10) -> Counter[str]:
    """``n`` requests for the pool (``concurrency`` at a time); how many each target served, by its header."""
    turns = asyncio.Semaphore(concurrency)

    async def one() -> str:
        async with turns:
            status, headers, _ = await post(http, gw, chat())
            assert status == 200
            return headers["x-localrouter-model"]

    return Counter(await asyncio.gather(*(one() for _ in range(n))))


async def test_round_robin_gives_each_target_exactly_its_turn(fakes, start_gateway, http):
    gw = await start_gateway(config(fakes, {"balance": "round_robin"}))
    assert await served_by(http, gw, 300) == {target: 100 for target in TARGETS}
    assert [calls(fakes[name]) for name in NAMES] == [100, 100, 100]


async def test_weighted_shares_follow_the_weights(fakes, start_gateway, http):
    pool = {"balance": "weighted", "weights": {"east/gpt-4o": 1, "west/gpt-4o": 3}}  # oa: 1 by default
    gw = await start_gateway(config(fakes, pool))
    served = await served_by(http, gw, 500)
    # the stated tolerance: each share within 3 points of weight / total weight (1/5, 3/5, 1/5)
    for target, share in zip(TARGETS, (0.2, 0.6, 0.2), strict=True):
        assert abs(served[target] / 500 - share) <= 0.03, served


async def test_least_busy_avoids_the_target_holding_a_stream(fakes, start_gateway, http):
    east, west = fakes["east"], fakes["west"]
    east.default = Script(stall_after=1)  # east's streams stay open after their first event
    gw = await start_gateway(config({"east": east, "west": west}, {"balance": "least_busy"}))
    assert await served_by(http, gw, 40, concurrency=1) == {"east/gpt-4o": 20, "west/gpt-4o": 20}  # idle: turns
    held: list[aiohttp.ClientResponse] = []
    while not held:  # streams until one is held open on east (a stream to west ends at once)
        resp = await http.post(gw.url + "/v1/chat/completions", json=chat(stream=True), headers=bearer())
        await resp.content.readline()
        if resp.headers["x-localrouter-model"] == "east/gpt-4o":
            held.append(resp)
        else:
            await resp.read()
            resp.release()
    assert await served_by(http, gw, 100, concurrency=1) == {"west/gpt-4o": 100}
    held[0].close()  # the client leaves: the stream ends, and east is idle again
    for _ in range(100):
        if east.open_streams == 0:
            break
        await asyncio.sleep(0.1)
    assert await served_by(http, gw, 40, concurrency=1) == {"east/gpt-4o": 20, "west/gpt-4o": 20}


async def test_latency_favours_the_faster_target(fakes, start_gateway, http):
    east, west = fakes["east"], fakes["west"]
    east.default = Script(delay=0.2)
    gw = await start_gateway(config({"east": east, "west": west}, {"balance": "latency"}))
    served = await served_by(http, gw, 100, concurrency=1)
    assert served["east/gpt-4o"] >= 1  # measured once at least
    assert served["west/gpt-4o"] >= 85, served  # the rest but a few picks that measure east again


async def test_usage_never_exceeds_a_targets_budget(fakes, start_gateway, http):
    limits = {"east/gpt-4o": {"requests_per_minute": 10}, "west/gpt-4o": {"requests_per_minute": 15}}
    gw = await start_gateway(
        config({"east": fakes["east"], "west": fakes["west"]}, {"balance": "usage", "limits": limits})
    )
    answers = await asyncio.gather(*(post(http, gw, chat()) for _ in range(40)))
    assert Counter(status for status, _, _ in answers) == {200: 25, 429: 15}
    assert (calls(fakes["east"]), calls(fakes["west"])) == (10, 15)
    refused = next(a for a in answers if a[0] == 429)
    assert int(refused[1]["Retry-After"]) >= 1
    assert refused[2]["error"]["type"] == "rate_limit_error"
    assert "budget" in refused[2]["error"]["message"]


async def test_usage_token_budget_stops_a_target_once_spent(fakes, start_gateway, http):
    limits = {"east/gpt-4o": {"tokens_per_minute": 30}}  # west has no budget: never skipped
    gw = await start_gateway(
        config({"east": fakes["east"], "west": fakes["west"]}, {"balance": "usage", "limits": limits})
    )
    served = await served_by(http, gw, 20, concurrency=1)
    # each answer uses USAGE's 12 tokens: east is admitted while under 30 (0, 12, 24), then only west serves
    assert USAGE["total_tokens"] == 12
    assert served == {"east/gpt-4o": 3, "west/gpt-4o": 17}


async def test_a_failed_target_is_followed_by_the_rest_of_the_pool_then_the_fallbacks(fakes, start_gateway, http):
    fakes["east"].default = Script(status=500)
    data = config(fakes, {})
    data["strategies"][0]["fallbacks"] = {POOL: ["backup/gpt-4o"]}
    gw = await start_gateway(data)
    answers = [await post(http, gw, chat()) for _ in range(30)]
    assert all(status == 200 for status, _, _ in answers)
    picked_east = [headers for status, headers, _ in answers if headers["x-localrouter-attempts"] == "2"]
    assert len(picked_east) == 10 and {h["x-localrouter-model"] for h in picked_east} == {"west/gpt-4o"}
    assert [calls(fakes[name]) for name in NAMES] == [10, 20, 10]
    for name in ("west", "oa"):
        fakes[name].default = Script(status=503)
    status, headers, body = await post(http, gw, chat())
    assert status == 200 and headers["x-localrouter-model"] == "backup/gpt-4o"
    assert headers["x-localrouter-attempts"] == "4"
    assert body["model"] == "backup/gpt-4o"


async def test_targets_cooling_down_are_left_out_of_the_turns(fakes, start_gateway, http):
    fakes["east"].default = Script(status=500)
    data = config(fakes, {})
    data["providers"][0]["cooldown"] = {"failures": 1, "seconds": 600}
    gw = await start_gateway(data)
    await served_by(http, gw, 3, concurrency=1)  # east fails once: it cools down
    assert await served_by(http, gw, 40, concurrency=1) == {"west/gpt-4o": 20, "oa/gpt-4o": 20}
    assert calls(fakes["east"]) == 1


async def test_a_pool_in_a_strategys_fallbacks_and_aliases(fakes, start_gateway, http):
    fakes["east"].default = Script(status=500)
    data = config(fakes, {})
    data["pools"][0]["targets"] = ["west/gpt-4o", "oa/gpt-4o"]
    data["strategies"][0]["fallbacks"] = {"east/gpt-4o": [POOL, "backup/gpt-4o"]}
    data["strategies"][0]["aliases"] = {"gpt-4o": POOL}
    data["strategies"][0]["auto"] = [POOL]
    gw = await start_gateway(data)
    served = Counter()
    for _ in range(20):
        status, headers, _ = await post(http, gw, chat("east/gpt-4o"))
        assert status == 200
        served[headers["x-localrouter-model"]] += 1
    assert served == {"west/gpt-4o": 10, "oa/gpt-4o": 10}
    for model in ("gpt-4o", "localrouter/auto"):
        picked = [(await post(http, gw, chat(model)))[1]["x-localrouter-model"] for _ in range(2)]
        assert sorted(picked) == ["oa/gpt-4o", "west/gpt-4o"]  # the alias and auto take the pool's turns


async def test_a_pool_the_strategy_does_not_allow_is_refused_and_unknown_pools_are_404(fakes, start_gateway, http):
    data = config(fakes, {})
    data["strategies"][0]["allow"] = ["east/*"]
    gw = await start_gateway(data)
    status, _, body = await post(http, gw, chat())
    assert status == 403 and body["error"]["code"] == "model_not_allowed"
    status, _, body = await post(http, gw, chat("pool/nope"))
    assert status == 404 and "no pool `nope` is configured" in body["error"]["message"]


async def test_a_pool_serves_an_endpoint_its_pick_lacks_from_its_other_targets(fakes, start_gateway, http):
    data = config(fakes, {})
    data["providers"][0]["endpoints"] = ["chat"]  # east: no embeddings
    gw = await start_gateway(data)
    served = Counter()
    for _ in range(6):
        body = {"model": POOL, "input": "hi"}
        async with http.post(gw.url + "/v1/embeddings", json=body, headers=bearer()) as resp:
            assert resp.status == 200, await resp.text()
            served[resp.headers["x-localrouter-model"]] += 1
    assert served == {"west/gpt-4o": 4, "oa/gpt-4o": 2}  # east's turns go to the next in the pool's order
    async with http.post(
        gw.url + "/v1/embeddings", json={"model": "east/gpt-4o", "input": "x"}, headers=bearer()
    ) as resp:
        assert resp.status == 400  # a plain model still must serve the endpoint itself


async def test_the_openai_sdk_uses_a_pool_and_models_lists_it(fakes, start_gateway):
    gw = await start_gateway(config(fakes, {}))
    async with gw.sdk() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model=POOL, messages=[{"role": "user", "content": "hi"}]
        )
        answer = raw.parse()
        assert raw.headers["x-localrouter-model"] == answer.model == "east/gpt-4o"
        assert answer.choices[0].message.content == "Hello from east"
        stream = await client.chat.completions.create(
            model=POOL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        assert text == "w0 w1 w2 "
        assert calls(fakes["west"]) == 1  # the second request: the next turn
        listed = [m.id for m in (await client.models.list()).data]
        assert POOL in listed and "east/gpt-4o" in listed and "west/gpt-4o" not in listed
        model = await client.models.retrieve(POOL)
        assert (model.id, model.owned_by) == (POOL, "localrouter")


async def test_metrics_count_requests_per_pool_and_target(fakes, start_gateway, http):
    gw = await start_gateway(config(fakes, {}))
    await served_by(http, gw, 6)
    async with http.get(gw.url + "/metrics") as resp:
        text = await resp.text()
    for target in TARGETS:
        assert f'localrouter_pool_requests_total{{pool="gpt-4o",target="{target}"}} 2.0' in text


async def test_reload_changes_a_pools_targets(fakes, start_gateway, http, tmp_path, monkeypatch):
    monkeypatch.setenv("ALICE_SECRET", ALICE)
    data = config(fakes, {})
    data["server"]["watch_config"] = False
    path = tmp_path / "localrouter.yaml"
    path.write_text(yaml.safe_dump(data))
    gw = await start_gateway(path)
    assert set(await served_by(http, gw, 6)) == set(TARGETS)
    data["pools"][0]["targets"] = ["oa/gpt-4o"]
    path.write_text(yaml.safe_dump(data))
    assert gw.app[LIVE].reload()
    assert await served_by(http, gw, 6) == {"oa/gpt-4o": 6}


def problems(data: dict[str, Any]) -> str:
    with pytest.raises(gwconfig.ConfigError) as caught:
        gwconfig.parse(data, ENV, types=TYPES)
    return "\n".join(caught.value.problems)


def test_config_problems_name_their_paths(fakes):
    base = config(fakes, {})
    pool = base["pools"][0]

    def with_pool(**changes: Any) -> dict[str, Any]:
        return {**base, "pools": [{**pool, **changes}]}

    assert "pools[0].targets[1]: unknown provider 'nowhere'" in problems(
        with_pool(targets=["east/gpt-4o", "nowhere/gpt-4o"])
    )
    assert "pools[0].targets[0]: provider 'east' does not list model 'gpt-5'" in problems(
        with_pool(targets=["east/gpt-5"])
    )
    assert "pools[0].targets: 'east/gpt-4o' is listed twice" in problems(with_pool(targets=["east/gpt-4o"] * 2))
    assert "pools[0].targets: a pool needs at least one target" in problems(with_pool(targets=[]))
    assert "pools[0].balance: expected one of round_robin, weighted" in problems(with_pool(balance="random"))
    assert "pools[0].weights: only for balance: weighted (this pool's is round_robin)" in problems(
        with_pool(weights={"east/gpt-4o": 2})
    )
    assert "pools[0].weights.backup/gpt-4o: not one of this pool's targets" in problems(
        with_pool(balance="weighted", weights={"backup/gpt-4o": 2})
    )
    assert "pools[0].weights.east/gpt-4o: must be positive" in problems(
        with_pool(balance="weighted", weights={"east/gpt-4o": 0})
    )
    assert "pools[0].limits: only for balance: usage" in problems(
        with_pool(limits={"east/gpt-4o": {"requests_per_minute": 5}})
    )
    assert "pools[0].limits: required for balance: usage" in problems(with_pool(balance="usage"))
    assert "pools[0].limits.backup/gpt-4o: not one of this pool's targets" in problems(
        with_pool(balance="usage", limits={"backup/gpt-4o": {"requests_per_minute": 5}})
    )
    assert "pools[0].limits.east/gpt-4o.requests_per_hour: unknown key" in problems(
        with_pool(balance="usage", limits={"east/gpt-4o": {"requests_per_hour": 5}})
    )
    assert "pools[0].targets[0]: 'pool/other': a pool's targets are provider/model ids" in problems(
        with_pool(targets=["pool/other"])
    )
    assert "pools[1].name: duplicate name 'gpt-4o'" in problems({**base, "pools": [pool, pool]})
    clash = {**base, "providers": [*base["providers"], {**base["providers"][0], "name": "pool"}]}
    assert "pools: a provider is named 'pool'" in problems(clash)
    unknown = {**base, "strategies": [{"name": "default", "auto": ["pool/nope"], "fallbacks": {POOL: ["pool/x"]}}]}
    found = problems(unknown)
    assert "strategies[0].auto[0]: unknown pool 'nope' in 'pool/nope'" in found
    assert "strategies[0].fallbacks.pool/gpt-4o[0]: unknown pool 'x' in 'pool/x'" in found
    alias = {**base, "strategies": [{"name": "default", "aliases": {"pool/mine": "east/gpt-4o"}}]}
    assert "strategies[0].aliases.pool/mine: ambiguous" in problems(alias)


def test_a_pool_is_a_model_id_for_auto_fallbacks_and_aliases(fakes):
    base = config(fakes, {})
    base["strategies"] = [
        {"name": "default", "auto": [POOL], "fallbacks": {POOL: ["backup/gpt-4o"]}, "aliases": {"mine": POOL}}
    ]
    cfg = gwconfig.parse(base, ENV, types=TYPES)
    assert cfg.pools[0].id == POOL and cfg.strategies[0].auto == (POOL,)


def test_weights_are_finite_numbers_as_written_in_yaml(fakes, tmp_path):
    """NaN, infinity and a quoted number are config problems named by path (a ``${VAR}`` may hold one)."""
    data = config(fakes, {"balance": "weighted"})
    path = tmp_path / "config.yaml"
    weights = "{east/gpt-4o: .nan, west/gpt-4o: .inf, oa/gpt-4o: '3'}"
    path.write_text(yaml.safe_dump(data).replace("balance: weighted", f"balance: weighted\n  weights: {weights}"))
    with pytest.raises(gwconfig.ConfigError) as caught:
        gwconfig.load(path, ENV, types=TYPES)
    found = "\n".join(caught.value.problems)
    assert "pools[0].weights.east/gpt-4o: expected a number, not nan" in found
    assert "pools[0].weights.west/gpt-4o: expected a number, not inf" in found
    assert "pools[0].weights.oa/gpt-4o: expected a number" in found
    path.write_text(path.read_text().replace("'3'", "'${WEIGHT}'").replace(".nan", "1").replace(".inf", "2"))
    pool = gwconfig.load(path, {**ENV, "WEIGHT": "3"}, types=TYPES).pools[0]
    assert dict(pool.weights) == {"east/gpt-4o": 1.0, "west/gpt-4o": 2.0, "oa/gpt-4o": 3.0}
