"""Retries, cooldown (circuit breaker), server-wide defaults and the headers that say what happened."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway import config as gwconfig
from providers.registry import TYPES
from tests.conftest import bearer, sse_events, standard_config
from tests.fakes.openai_upstream import Script

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def chat_calls(fake) -> int:
    return len([r for r in fake.received if r.path.endswith("/chat/completions")])


def with_primary(upstreams, **settings) -> dict:
    data = standard_config(*upstreams)
    data["providers"][0].update(settings)
    return data


async def post(http, gw, body=CHAT):
    async with http.post(gw.url + "/v1/chat/completions", json=body, headers=bearer()) as resp:
        payload = await sse_events(resp) if body.get("stream") else await resp.json()
        return resp.status, resp.headers, payload


async def test_served_headers_name_the_target_and_the_attempts(gw, http, upstreams):
    status, headers, _ = await post(http, gw)
    assert status == 200
    assert headers["x-localrouter-provider"] == "openai"
    assert headers["x-localrouter-model"] == "openai/gpt-4o-mini"
    assert headers["x-localrouter-attempts"] == "1"
    upstreams[0].queue(Script(status=500))
    status, headers, _ = await post(http, gw, {**CHAT, "stream": True})
    assert status == 200 and headers["x-localrouter-provider"] == "backup" and headers["x-localrouter-attempts"] == "2"


@pytest.mark.parametrize("stream", [False, True])
async def test_retries_the_same_target_before_moving_on(upstreams, start_gateway, http, stream):
    primary, backup = upstreams
    gw = await start_gateway(with_primary(upstreams, retries=2))
    primary.queue(Script(status=503), Script(status=502))
    started = time.monotonic()
    status, headers, payload = await post(http, gw, {**CHAT, "stream": stream})
    assert status == 200 and headers["x-localrouter-provider"] == "openai"
    assert headers["x-localrouter-attempts"] == "3"
    assert chat_calls(primary) == 3 and chat_calls(backup) == 0
    assert time.monotonic() - started >= 0.1 + 0.2  # backoff: >= half of 0.2 s, then of 0.4 s (jitter)
    primary.queue(Script(status=503), Script(status=503), Script(status=503))
    status, headers, _ = await post(http, gw, {**CHAT, "stream": stream})
    assert status == 200 and headers["x-localrouter-provider"] == "backup" and headers["x-localrouter-attempts"] == "4"


async def test_retry_waits_for_a_short_retry_after_and_skips_a_long_one(upstreams, start_gateway, http):
    primary, backup = upstreams
    gw = await start_gateway(with_primary(upstreams, retries=1))
    primary.queue(Script(status=429, headers={"Retry-After": "1"}))
    started = time.monotonic()
    status, headers, _ = await post(http, gw)
    assert status == 200 and headers["x-localrouter-provider"] == "openai"
    assert time.monotonic() - started >= 1.0
    primary.queue(Script(status=429, headers={"Retry-After": "120"}))  # too long to wait: next target at once
    started = time.monotonic()
    status, headers, _ = await post(http, gw)
    assert status == 200 and headers["x-localrouter-provider"] == "backup"
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    "script", [Script(status=400, body={"error": {"message": "bad"}}), Script(status=401), Script(status=403)]
)
async def test_never_retries_a_client_fault_or_refused_credentials(upstreams, start_gateway, http, script):
    primary, _ = upstreams
    gw = await start_gateway(with_primary(upstreams, retries=3))
    primary.queue(script, script, script, script)
    status, headers, payload = await post(http, gw)
    assert chat_calls(primary) == 1
    if script.status == 400:
        assert status == 400 and headers["x-localrouter-attempts"] == "1"
    else:  # the gateway's own key refused: never the client's 401, fall back instead
        assert status == 200 and headers["x-localrouter-provider"] == "backup"


async def test_upstream_credential_failure_exhausted_is_503_naming_the_provider(gw, http, upstreams):
    primary, backup = upstreams
    primary.queue(Script(status=401))
    backup.queue(Script(status=403))
    status, _, payload = await post(http, gw)
    assert status == 503
    message = payload["error"]["message"]
    assert "openai/gpt-4o-mini: refused the gateway's credentials (401)" in message
    assert "backup/gpt-4o-mini: refused the gateway's credentials (403)" in message


async def test_cooldown_skips_a_failing_target_then_probes_it_again(upstreams, start_gateway, http):
    primary, backup = upstreams
    gw = await start_gateway(with_primary(upstreams, cooldown={"failures": 2, "seconds": 1}))
    primary.default = Script(status=500)
    for _ in range(2):
        status, headers, _ = await post(http, gw)
        assert status == 200 and headers["x-localrouter-provider"] == "backup"
    assert chat_calls(primary) == 2
    async with http.get(gw.url + "/health?detail=1") as resp:
        detail = await resp.json()
    assert detail["targets"][0]["target"] == "openai/gpt-4o-mini"
    assert detail["targets"][0]["state"] == "cooling_down" and 0 < detail["targets"][0]["retry_in_seconds"] <= 1
    assert "sk-upstream" not in str(detail)
    status, headers, _ = await post(http, gw)  # skipped: not even called
    assert headers["x-localrouter-provider"] == "backup" and headers["x-localrouter-attempts"] == "1"
    assert chat_calls(primary) == 2
    await asyncio.sleep(1.1)
    primary.default = Script()  # healthy again: the probe succeeds and closes the breaker
    status, headers, _ = await post(http, gw)
    assert headers["x-localrouter-provider"] == "openai" and chat_calls(primary) == 3
    async with http.get(gw.url + "/health?detail=1") as resp:
        assert (await resp.json())["targets"] == []


async def test_a_failed_probe_cools_down_again_and_all_cooling_gives_503_with_retry_after(
    upstreams, start_gateway, http
):
    primary, backup = upstreams
    data = standard_config(*upstreams)
    data["server"]["defaults"] = {"cooldown": {"failures": 1, "seconds": 2}}
    gw = await start_gateway(data)
    primary.default = backup.default = Script(status=500)
    status, _, _ = await post(http, gw)
    assert status == 503 and chat_calls(primary) == 1 and chat_calls(backup) == 1
    status, headers, payload = await post(http, gw)  # both cooling down: nothing is called
    assert status == 503 and 1 <= int(headers["Retry-After"]) <= 2
    assert "cooling down" in payload["error"]["message"]
    assert chat_calls(primary) == 1 and chat_calls(backup) == 1
    await asyncio.sleep(2.1)
    status, _, _ = await post(http, gw)  # half-open: each probed once, fails, cools down again
    assert status == 503 and chat_calls(primary) == 2 and chat_calls(backup) == 2
    status, _, _ = await post(http, gw)
    assert chat_calls(primary) == 2


async def test_mid_stream_failures_count_towards_cooldown(upstreams, start_gateway, http):
    primary, backup = upstreams
    gw = await start_gateway(with_primary(upstreams, cooldown={"failures": 2, "seconds": 30}))
    primary.default = Script(cut_after=1)
    for _ in range(2):
        status, headers, events = await post(http, gw, {**CHAT, "stream": True})
        assert headers["x-localrouter-provider"] == "openai" and "error" in events[-2]
    status, headers, events = await post(http, gw, {**CHAT, "stream": True})
    assert headers["x-localrouter-provider"] == "backup" and events[-1] == "[DONE]" and "error" not in events[-2]


def test_server_defaults_apply_key_by_key_and_providers_override_them(upstreams):
    data = standard_config(*upstreams)
    data["server"]["defaults"] = {"timeouts": {"connect": 3, "total": 99}, "retries": 2, "cooldown": {"failures": 7}}
    data["providers"][0]["timeouts"] = {"connect": 1}
    data["providers"][0]["retries"] = 0
    cfg = gwconfig.parse(data, {"ALICE_SECRET": "x" * 20}, types=TYPES)
    primary, backup = cfg.providers
    assert (primary.timeouts.connect, primary.timeouts.total, primary.timeouts.first_byte) == (1, 99, 120)
    assert primary.retries == 0 and backup.retries == 2
    assert backup.timeouts.connect == 3 and backup.timeouts.idle == 2  # the provider's own idle stays
    assert primary.cooldown == backup.cooldown == gwconfig.Cooldown(failures=7, seconds=30.0)


@pytest.mark.parametrize(
    "bad, problem",
    [
        ({"retries": -1}, "providers[0].retries: must be >= 0"),
        ({"retries": 11}, "providers[0].retries: must be <= 10"),
        ({"cooldown": {"failures": "x"}}, "providers[0].cooldown.failures: expected an integer"),
        ({"cooldown": {"seconds": 0}}, "providers[0].cooldown.seconds: must be positive"),
        ({"cooldown": {"minutes": 1}}, "providers[0].cooldown.minutes: unknown key"),
    ],
)
def test_bad_resilience_settings_are_config_errors(upstreams, bad, problem):
    data = with_primary(upstreams, **bad)
    with pytest.raises(gwconfig.ConfigError) as err:
        gwconfig.parse(data, {"ALICE_SECRET": "x" * 20}, types=TYPES)
    assert problem in err.value.problems
