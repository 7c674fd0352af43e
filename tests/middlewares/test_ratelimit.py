"""Rate limits with the memory backend: each limit kind, sliding windows, headers, Retry-After."""

from __future__ import annotations

import asyncio
import time

import pytest

from providers.registry import TYPES
from tests.conftest import ALICE, BOB, bearer, sse_events, standard_config

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
# every answer of the fake upstream uses 7 prompt + 5 completion = 12 tokens


def limited(upstreams, *limits, prices=None) -> dict:
    data = standard_config(*upstreams)
    data["strategies"][0]["rate_limits"] = list(limits)
    data["clients"].append({"name": "dave", "secret": "lr-dave-secret-0123456789abcdef", "strategy": "default"})
    if prices:
        data["providers"][0]["prices"] = prices
    return data


async def call(http, gw, key=ALICE, body=CHAT):
    async with http.post(gw.url + "/v1/chat/completions", json=body, headers=bearer(key)) as resp:
        if body.get("stream") and resp.status == 200:
            await sse_events(resp)
        else:
            await resp.read()
        await asyncio.sleep(0.02)  # usage is counted just after the answer
        return resp.status, resp.headers


async def test_requests_per_minute_with_headers_on_every_answer(upstreams, start_gateway, http):
    gw = await start_gateway(limited(upstreams, {"requests": 3, "per": "minute"}))
    started = time.time()
    for remaining in (2, 1, 0):
        status, headers = await call(http, gw)
        assert status == 200
        assert headers["x-ratelimit-limit-requests"] == "3"
        assert headers["x-ratelimit-remaining-requests"] == str(remaining)
        assert headers["x-ratelimit-reset-requests"] in ("59s", "1m0s", "1m1s")
    status, headers = await call(http, gw)
    assert status == 429
    assert headers["x-ratelimit-remaining-requests"] == "0"
    expected = 60 - (time.time() - started)
    assert abs(int(headers["Retry-After"]) - expected) <= 1
    status, headers = await call(http, gw, body={**CHAT, "stream": True})  # streams are requests too
    assert status == 429 and "x-ratelimit-limit-requests" in headers
    # an answer that is not a success still says where the client stands
    status, headers = await call(http, gw, "lr-dave-secret-0123456789abcdef", {**CHAT, "model": "nope/x"})
    assert status == 404 and headers["x-ratelimit-remaining-requests"] == "2"
    # each client has its own budget; a strategy without limits sends no headers
    assert (await call(http, gw, "lr-dave-secret-0123456789abcdef"))[0] == 200
    status, headers = await call(http, gw, BOB, {**CHAT, "model": "backup/gpt-4o-mini"})
    assert status == 200 and "x-ratelimit-limit-requests" not in headers


async def test_the_429_is_openai_shaped_and_the_sdk_raises_rate_limit_error(upstreams, start_gateway):
    import openai

    gw = await start_gateway(limited(upstreams, {"requests": 1, "per": "hour"}))
    async with gw.sdk() as sdk:
        await sdk.chat.completions.create(**CHAT)
        with pytest.raises(openai.RateLimitError) as err:
            await sdk.chat.completions.create(**CHAT)
    assert err.value.body["code"] == "rate_limit_exceeded" and "1 requests per hour" in err.value.body["message"]
    assert 3600 - 60 - 1 <= int(err.value.response.headers["Retry-After"]) <= 3600  # hour buckets: 1 min


async def test_the_window_slides_instead_of_resetting(upstreams, start_gateway, http):
    gw = await start_gateway(limited(upstreams, {"requests": 2, "per": "second"}))
    t0 = time.monotonic()
    assert (await call(http, gw))[0] == 200  # A at ~0 s
    await asyncio.sleep(0.5 - (time.monotonic() - t0))
    assert (await call(http, gw))[0] == 200  # B at ~0.5 s
    status, headers = await call(http, gw)
    assert status == 429 and headers["Retry-After"] == "1"
    await asyncio.sleep(1.1 - (time.monotonic() - t0))  # A has left the window, B has not
    assert (await call(http, gw))[0] == 200
    assert (await call(http, gw))[0] == 429  # a window reset on the second boundary would admit this
    await asyncio.sleep(2.2 - (time.monotonic() - t0))
    assert (await call(http, gw))[0] == 200


@pytest.mark.parametrize("stream", [False, True])
async def test_total_tokens_are_counted_from_each_answers_usage(upstreams, start_gateway, http, stream):
    gw = await start_gateway(limited(upstreams, {"total_tokens": 20, "per": "minute"}))
    body = {**CHAT, "stream": stream}
    status, headers = await call(http, gw, body=body)
    assert status == 200 and headers["x-ratelimit-remaining-tokens"] == "20"  # admitted with 0 used
    status, headers = await call(http, gw, body=body)
    assert status == 200 and headers["x-ratelimit-remaining-tokens"] == "8"  # 12 used: still budget left
    status, headers = await call(http, gw, body=body)  # 24 used: over
    assert status == 429 and headers["x-ratelimit-remaining-tokens"] == "0"
    assert 58 <= int(headers["Retry-After"]) <= 60


async def test_input_and_output_tokens_are_separate_limits(upstreams, start_gateway, http):
    gw = await start_gateway(
        limited(upstreams, {"input_tokens": 100, "per": "minute"}, {"output_tokens": 10, "per": "minute"})
    )
    for _ in range(2):
        assert (await call(http, gw))[0] == 200
    status, headers = await call(http, gw)  # 10 output tokens used, 14 input
    assert status == 429
    assert headers["x-ratelimit-remaining-output-tokens"] == "0"
    assert headers["x-ratelimit-remaining-input-tokens"] == "86"


async def test_cost_is_counted_from_prices(upstreams, start_gateway, http):
    prices = {"gpt-4o-mini": {"input_per_1m": 100000, "output_per_1m": 20000}}  # 0.7 + 0.1 USD per answer
    gw = await start_gateway(limited(upstreams, {"cost_usd": 1.5, "per": "day"}, prices=prices))
    assert (await call(http, gw))[0] == 200
    status, headers = await call(http, gw)
    assert status == 200 and headers["x-ratelimit-remaining-cost-usd"] == "0.7"
    status, headers = await call(http, gw)
    assert status == 429 and headers["x-ratelimit-limit-cost-usd"] == "1.5"


async def test_several_limits_of_one_kind_report_the_tightest(upstreams, start_gateway, http):
    gw = await start_gateway(limited(upstreams, {"requests": 100, "per": "minute"}, {"requests": 2, "per": "day"}))
    status, headers = await call(http, gw)
    assert headers["x-ratelimit-limit-requests"] == "2" and headers["x-ratelimit-remaining-requests"] == "1"
    await call(http, gw)
    status, headers = await call(http, gw)
    assert status == 429 and 86400 - 1440 - 1 <= int(headers["Retry-After"]) <= 86400  # day buckets: 24 min
    # a refused request consumed nothing: the per-minute window still counts 2
    data = await (await http.get(gw.url + "/health")).json()
    assert data["state"] == {"backend": "memory", "ok": True}


@pytest.mark.parametrize(
    "limit, problem",
    [
        ({"requests": 5}, "strategies[0].rate_limits[0].per: required"),
        ({"requests": 5, "per": "week"}, "strategies[0].rate_limits[0].per: expected one of second, minute, hour, day"),
        ({"requests": 1.5, "per": "minute"}, "strategies[0].rate_limits[0].requests: expected an integer"),
        ({"requests": 5, "total_tokens": 5, "per": "minute"}, "strategies[0].rate_limits[0]: exactly one of"),
        ({"cost_usd": -1, "per": "day"}, "strategies[0].rate_limits[0].cost_usd: must be positive"),
    ],
)
def test_bad_limits_are_config_errors(upstreams, limit, problem):
    from gateway import config as gwconfig

    with pytest.raises(gwconfig.ConfigError) as err:
        gwconfig.parse(limited(upstreams, limit), {"ALICE_SECRET": ALICE}, types=TYPES)
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems
