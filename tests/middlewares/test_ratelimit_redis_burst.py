"""Redis budgets under a burst: waiting for one of the pool's connections is not an outage."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest

from gateway import config as gwconfig
from providers.registry import TYPES
from tests.conftest import ALICE, bearer, standard_config
from tests.procs import OUTPUTS, start_serve, stop, write_config
from tests.redisserver import RedisServer

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


async def burst(url: str, n: int) -> Counter[int]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def one() -> int:
            async with http.post(url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
                await resp.read()
                return resp.status

        return Counter(await asyncio.gather(*(one() for _ in range(n))))


# the default pool (more requests in flight than connections) and a tiny one (every request but a few waits)
@pytest.mark.parametrize("pool", [{}, {"max_connections": 4}], ids=["default-pool", "4-connections"])
@pytest.mark.parametrize("fail_closed", [False, True], ids=["fail-open", "fail-closed"])
async def test_400_at_once_across_two_workers_admit_exactly_the_budget(
    tmp_path, upstreams, redis_server, fail_closed, pool
):
    data = standard_config(*upstreams)
    data["strategies"][0]["rate_limits"] = [{"requests": 50, "per": "minute"}]
    data["state"] = {"backend": "redis", "redis_url": redis_server.url, "fail_closed": fail_closed, **pool}
    proc, url, _ = await start_serve(
        "-c", str(write_config(tmp_path, data)), "--workers", "2", env={"ALICE_SECRET": ALICE}
    )
    output = OUTPUTS[proc.pid]
    try:
        statuses = await burst(url, 400)
    finally:
        assert await stop(proc) == 0
    logged = "".join(line for line in output.lines if "localrouter.state" in line or "localrouter.ratelimit" in line)
    assert statuses == {200: 50, 429: 350}, logged
    assert not logged  # nobody judged Redis down: it never was


async def test_redis_back_after_an_outage_under_load_is_judged_up_once(tmp_path, upstreams, redis_server):
    data = standard_config(*upstreams)
    data["strategies"][0]["rate_limits"] = [{"requests": 1_000_000, "per": "minute"}]
    data["state"] = {"backend": "redis", "redis_url": redis_server.url}
    proc, url, _ = await start_serve(
        "-c", str(write_config(tmp_path, data)), "--workers", "2", env={"ALICE_SECRET": ALICE}
    )
    output = OUTPUTS[proc.pid]
    phase = "before"
    seen: dict[str, Counter[tuple[int, bool]]] = {p: Counter() for p in ("before", "down", "after", "last", "done")}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

            async def load() -> None:
                while phase != "done":
                    async with http.post(url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
                        await resp.read()
                        seen[phase][resp.status, "x-ratelimit-remaining-requests" in resp.headers] += 1

            tasks = [asyncio.create_task(load()) for _ in range(250)]
            # each phase lasts its time, and on a loaded machine until 20 answers came in it as well
            for phase, seconds in (("before", 1.0), ("down", 2.0), ("after", 3.0), ("last", 1.0)):
                if phase == "down":
                    redis_server.stop()
                elif phase == "after":
                    redis_server.start()  # same port
                await asyncio.sleep(seconds)
                async with asyncio.timeout(30):
                    while seen[phase].total() < 20:
                        await asyncio.sleep(0.05)
            phase = "done"
            await asyncio.gather(*tasks)
    finally:
        assert await stop(proc) == 0
    downs = [line for line in output.lines if "backend unreachable" in line]
    ups = [line for line in output.lines if "reachable again" in line]
    assert seen["before"].keys() == {(200, True)} and seen["last"].keys() == {(200, True)}
    assert (200, False) in seen["down"] and all(status == 200 for status, _ in seen["down"])  # failing open
    # each worker judged Redis down once and up once, not back and forth
    assert 1 <= len(downs) == len(ups) <= 2, "".join(downs + ups)


async def test_a_request_that_waits_past_pool_timeout_is_refused_alone(upstreams, redis_server, start_gateway, caplog):
    data = standard_config(*upstreams)
    data["strategies"][0]["rate_limits"] = [{"requests": 1000, "per": "minute"}]
    # one connection, and a wait no request gets when another holds it
    data["state"] = {"backend": "redis", "redis_url": redis_server.url, "max_connections": 1, "pool_timeout": 0.001}
    gw = await start_gateway(data)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def one() -> tuple[int, str | None]:
            async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
                body = await resp.json()
                return resp.status, body["error"]["code"] if resp.status != 200 else None

        results = Counter(await asyncio.gather(*(one() for _ in range(50))))
        # refused, not served unlimited (fail_closed is false, but Redis is not down)
        assert (503, "rate_limit_state_busy") in results and (200, None) in results
        assert set(results) == {(503, "rate_limit_state_busy"), (200, None)}
        async with http.get(gw.url + "/health") as resp:
            assert (await resp.json())["state"] == {"backend": "redis", "ok": True}
        async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
            assert resp.status == 200 and int(resp.headers["x-ratelimit-remaining-requests"]) >= 1000 - 51
    assert not any("unreachable" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "state, problem",
    [
        ({"max_connections": 0}, "state.max_connections: must be positive"),
        ({"max_connections": 2.5}, "state.max_connections: expected an integer"),
        ({"pool_timeout": -1}, "state.pool_timeout: must be positive"),
        ({"timeout": "soon"}, "state.timeout: expected a number"),
    ],
)
def test_pool_settings_are_checked(upstreams, state, problem):
    with pytest.raises(gwconfig.ConfigError) as err:
        gwconfig.parse(
            standard_config(*upstreams, state={"backend": "redis", **state}), {"ALICE_SECRET": ALICE}, types=TYPES
        )
    assert problem in err.value.problems


def test_pool_settings_are_read(upstreams):
    data = standard_config(
        *upstreams, state={"backend": "redis", "max_connections": 8, "pool_timeout": 0.5, "timeout": 1}
    )
    state = gwconfig.parse(data, {"ALICE_SECRET": ALICE}, types=TYPES).state
    assert (state.max_connections, state.pool_timeout, state.timeout) == (8, 0.5, 1)
    default = gwconfig.parse(standard_config(*upstreams), {"ALICE_SECRET": ALICE}, types=TYPES).state
    assert (default.max_connections, default.pool_timeout, default.timeout) == (50, 5, 2)
