"""The firewall when its Redis (``state.backend: redis``) is down or stalled, over real HTTP against a real
redis-server stopped (or paused) mid-test: a request a rule asks about is neither held nor let through but
answered 503 ``firewall_unavailable`` with Retry-After, in its endpoint's shape (OpenAI, Anthropic, a
JSON-RPC error for MCP), and so is the admin's list and decision; a grant kept in Redis cannot be read, so
it lets nothing through; a request already held waits out its ``ask_timeout`` (403), never a 500."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import anthropic
import openai
import pytest

from gateway.api.mcp import INTERNAL_ERROR
from tests.conftest import ALICE
from tests.firewall.conftest import ROOT, config, decide, waiting
from tests.firewall.conftest import audit as audit_records
from tests.firewall.test_mcp_e2e import connected, mcp_config
from tests.redisserver import RedisServer

HI = [{"role": "user", "content": "hi"}]
#: generous: the answer is bounded by ``state.timeout`` (1 s here), the machine is shared and slow
PROMPT = 15.0


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    if server.proc is not None:
        server.proc.send_signal(signal.SIGCONT)  # a paused one must be able to die
    server.stop()


def on_redis(data: dict[str, Any], server: RedisServer) -> dict[str, Any]:
    data["state"] = {"backend": "redis", "redis_url": server.url, "timeout": 1}
    return data


@pytest.fixture
async def sdk_of():
    """An SDK client on a gateway, closed after the test (its connection pool holds sockets)."""
    made: list[openai.AsyncOpenAI] = []

    def make(gw: Any) -> openai.AsyncOpenAI:
        made.append(gw.sdk())
        return made[-1]

    yield make
    for client in made:
        await client.close()


@pytest.fixture
async def fake(fake_upstream):
    return await fake_upstream("primary", models=("gpt-4o-mini", "gpt-4o", "o1"))


async def refused_503(http, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    async with http.request(method, url, headers=ROOT, **kwargs) as resp:
        assert resp.status == 503 and resp.headers["Retry-After"] == "1", await resp.text()
        return (await resp.json())["error"]


async def test_redis_down_asked_requests_grants_and_the_admin_get_503(fake, redis_server, start_gateway, http, sdk_of):
    gw = await start_gateway(on_redis(config(fake.base_url), redis_server))
    sdk = sdk_of(gw)
    held = asyncio.create_task(sdk.chat.completions.create(model="openai/gpt-4o", messages=HI))
    [approval] = await waiting(http, gw.url)
    assert await decide(http, gw.url, approval["id"], "allow_for", seconds=600) == 200
    await asyncio.wait_for(held, 10)
    redis_server.stop()

    # the grant is in Redis: it cannot be read, so it lets nothing through, and nothing is held either
    began = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        await sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)
    assert time.monotonic() - began < PROMPT
    assert caught.value.status_code == 503 and caught.value.response.headers["Retry-After"] == "1"
    error = caught.value.body
    assert error["code"] == "firewall_unavailable" and error["type"] == "server_error"
    assert "`openai/gpt-4o`" in error["message"] and "approval" in error["message"]
    with pytest.raises(openai.InternalServerError):  # a stream, before its first byte
        await sdk.chat.completions.create(model="smart", messages=HI, stream=True)
    claude = anthropic.AsyncAnthropic(base_url=gw.url, api_key=ALICE, max_retries=0, timeout=20)
    async with claude:
        with pytest.raises(anthropic.InternalServerError) as refused:
            await claude.messages.create(model="openai/gpt-4o", max_tokens=10, messages=HI)
    assert refused.value.status_code == 503 and refused.value.body["error"]["type"] == "overloaded_error"
    assert "cannot be reached" in refused.value.body["error"]["message"]
    with pytest.raises(openai.PermissionDeniedError):  # a deny needs no Redis
        await sdk.chat.completions.create(model="openai/o1", messages=HI)
    # a model no rule asks about is served as ever (rate limits fail open without state.fail_closed)
    assert (await sdk.chat.completions.create(model="openai/gpt-4o-mini", messages=HI)).model == "openai/gpt-4o-mini"

    listed = await refused_503(http, "GET", f"{gw.url}/admin/api/approvals")
    assert listed["code"] == "firewall_unavailable" and listed["type"] == "server_error"
    decided = await refused_503(
        http, "POST", f"{gw.url}/admin/api/approvals/{approval['id']}", json={"decision": "deny"}
    )
    assert decided["code"] == "firewall_unavailable"
    assert [r.body["model"] for r in fake.received] == ["gpt-4o", "gpt-4o-mini"]
    await asyncio.sleep(0)  # the records are handed to the writer as the refusals are made
    unavailable = [r for r in await audit_records(gw) if r.action == "unavailable"]
    assert len(unavailable) == 3 and {(r.subject, r.actor) for r in unavailable} == {("openai/gpt-4o", "state")}


async def test_a_stalled_redis_answers_503_in_bounded_time_then_asking_works_again(
    fake, redis_server, start_gateway, http, sdk_of
):
    gw = await start_gateway(on_redis(config(fake.base_url), redis_server))
    sdk = sdk_of(gw)
    assert redis_server.proc is not None
    redis_server.proc.send_signal(signal.SIGSTOP)  # connections open, no answers: a slow Redis
    began = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        await sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)
    assert caught.value.body["code"] == "firewall_unavailable" and time.monotonic() - began < PROMPT
    await refused_503(http, "GET", f"{gw.url}/admin/api/approvals")
    redis_server.proc.send_signal(signal.SIGCONT)
    await asyncio.sleep(1.5)  # after a failure the firewall tries Redis again a second later
    held = asyncio.create_task(sdk.chat.completions.create(model="openai/gpt-4o", messages=HI))
    [approval] = await waiting(http, gw.url)
    assert await decide(http, gw.url, approval["id"], "allow_once") == 200
    assert (await asyncio.wait_for(held, 10)).model == "openai/gpt-4o"


async def test_a_request_held_when_redis_goes_down_waits_out_its_timeout(
    fake, redis_server, start_gateway, http, sdk_of
):
    gw = await start_gateway(on_redis(config(fake.base_url, ask_timeout=3), redis_server))
    held = asyncio.create_task(sdk_of(gw).chat.completions.create(model="openai/gpt-4o", messages=HI))
    await waiting(http, gw.url)
    redis_server.stop()
    with pytest.raises(openai.PermissionDeniedError) as caught:
        await asyncio.wait_for(held, PROMPT)
    assert caught.value.body["code"] == "firewall_denied" and "none came within 3 s" in caught.value.body["message"]
    assert fake.received == []


async def test_redis_down_an_asked_mcp_call_is_a_json_rpc_error(tmp_path, redis_server, start_gateway):
    from mcp import MCPError

    gw = await start_gateway(on_redis(mcp_config(tmp_path), redis_server))
    async with connected(f"{gw.url}/mcp") as session:
        redis_server.stop()
        with pytest.raises(MCPError) as caught:
            await asyncio.wait_for(session.get_prompt("files__greet", {"name": "Ada"}), PROMPT)
        assert caught.value.error.code == INTERNAL_ERROR
        assert "`files__greet`" in caught.value.error.message and "cannot be reached" in caught.value.error.message
        assert caught.value.error.data == {"code": "firewall_unavailable"}
        echoed = await session.call_tool("files__echo", {"text": "still here"})  # no rule asks: served
        assert echoed.content[0].text.startswith("still here")
