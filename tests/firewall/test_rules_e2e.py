"""The firewall's rules on models, over real HTTP with the openai and anthropic SDKs: deny (also through an
alias and localrouter/auto), ask (held until an admin decides: allow once, allow for a while, deny, no
decision in time), a held stream, a client that leaves while held, the webhook, metrics and audit records."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from aiohttp import web

from tests.conftest import ALICE, bearer, sse_events
from tests.firewall.conftest import AWS_KEY, ROOT, config, decide, waiting
from tests.firewall.conftest import audit as audit_records

HI = [{"role": "user", "content": "hi"}]
WEBHOOK_TOKEN = "hook-token-0123456789abcdefXYZ"


@pytest.fixture(autouse=True)
async def closed_clients(monkeypatch):
    """Every SDK client a test makes is closed after it (their connection pools hold sockets)."""
    made: list[Any] = []
    for cls in (openai.AsyncOpenAI, anthropic.AsyncAnthropic):
        original = cls.__init__

        def init(self, *args, _original=original, **kwargs):
            _original(self, *args, **kwargs)
            made.append(self)

        monkeypatch.setattr(cls, "__init__", init)
    yield
    for client in made:
        await client.close()


@pytest.fixture
async def fake(fake_upstream):
    return await fake_upstream("primary", models=("gpt-4o-mini", "gpt-4o", "o1"))


async def test_deny_on_a_model_in_each_endpoint_shape_never_reaches_the_upstream(fake, start_gateway, http):
    gw = await start_gateway(config(fake.base_url))
    sdk = gw.sdk()
    for model in ("openai/o1", "big"):  # the model, and an alias of it
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await sdk.chat.completions.create(model=model, messages=HI)
        error = caught.value.body
        assert error["code"] == "firewall_denied" and "`openai/o1`" in error["message"]
        assert "rule `openai/o1`" in error["message"]
    with pytest.raises(openai.PermissionDeniedError):
        await sdk.responses.create(model="openai/o1", input="hi")
    claude = anthropic.AsyncAnthropic(base_url=gw.url, api_key=ALICE, max_retries=0, timeout=20)
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        await claude.messages.create(model="openai/o1", max_tokens=10, messages=HI)
    assert refused.value.body["type"] == "error" and "firewall rule" in refused.value.body["error"]["message"]
    assert fake.received == []
    # localrouter/auto: its denied target is left out, the next one serves
    answer = await sdk.chat.completions.create(model="localrouter/auto", messages=HI)
    assert answer.model == "openai/gpt-4o-mini" and [r.body["model"] for r in fake.received] == ["gpt-4o-mini"]
    async with http.get(f"{gw.url}/metrics") as resp:
        metrics = await resp.text()
    assert 'localrouter_firewall_decisions_total{action="deny",client="alice"} 4.0' in metrics
    await asyncio.sleep(0)  # the records are handed to the writer as the refusals are made
    records = await audit_records(gw)
    assert {(r.client, r.subject, r.action, r.actor, r.rule) for r in records} == {
        ("alice", "openai/o1", "deny", "rule", "openai/o1")
    }


async def test_ask_allowed_once_then_asked_again(fake, start_gateway, http):
    gw = await start_gateway(config(fake.base_url))
    sdk = gw.sdk()
    held = asyncio.create_task(sdk.chat.completions.create(model="smart", messages=HI))  # alias of gpt-4o
    [approval] = await waiting(http, gw.url)
    assert approval["client"] == "alice" and approval["what"] == "openai/gpt-4o"
    assert approval["rule"] == "openai/gpt-4o" and approval["since"] <= time.time()
    assert not held.done() and fake.received == []
    assert await decide(http, gw.url, approval["id"], "allow_once") == 200
    answer = await asyncio.wait_for(held, 10)
    assert answer.model == "openai/gpt-4o" and len(fake.received) == 1
    assert await decide(http, gw.url, approval["id"], "deny") == 404  # decided already
    again = asyncio.create_task(sdk.chat.completions.create(model="openai/gpt-4o", messages=HI))
    [second] = await waiting(http, gw.url)
    assert second["id"] != approval["id"]
    await decide(http, gw.url, second["id"], "allow_once")
    await asyncio.wait_for(again, 10)
    records = await audit_records(gw)
    assert [(r.action, r.actor) for r in records] == [("allow_once", "root"), ("allow_once", "root")]
    assert all(r.held_ms is not None and r.held_ms > 0 for r in records)


async def test_ask_denied_by_an_admin(fake, start_gateway, http):
    gw = await start_gateway(config(fake.base_url))
    claude = anthropic.AsyncAnthropic(base_url=gw.url, api_key=ALICE, max_retries=0, timeout=20)
    held = asyncio.create_task(claude.messages.create(model="openai/gpt-4o", max_tokens=10, messages=HI))
    [approval] = await waiting(http, gw.url)
    assert await decide(http, gw.url, approval["id"], "deny") == 200
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        await asyncio.wait_for(held, 10)
    assert "denied by an admin" in refused.value.body["error"]["message"]
    assert fake.received == []


async def test_ask_without_a_decision_in_time_is_refused(fake, start_gateway, http):
    gw = await start_gateway(config(fake.base_url, ask_timeout=1))
    began = time.monotonic()
    with pytest.raises(openai.PermissionDeniedError) as caught:
        await gw.sdk().responses.create(model="openai/gpt-4o", input="hi")
    assert 0.9 < time.monotonic() - began < 8
    assert "none came within 1 s" in caught.value.body["message"] and fake.received == []
    assert await waiting(http, gw.url, count=0) == []  # gone from the list
    [record] = await audit_records(gw)
    assert (record.action, record.actor) == ("timeout", "timeout")


async def test_allow_for_a_while_then_asked_again(fake, start_gateway, http):
    gw = await start_gateway(config(fake.base_url))
    sdk = gw.sdk()
    held = asyncio.create_task(sdk.chat.completions.create(model="openai/gpt-4o", messages=HI))
    [approval] = await waiting(http, gw.url)
    assert await decide(http, gw.url, approval["id"], "allow_for", seconds=1.5) == 200
    await asyncio.wait_for(held, 10)
    await asyncio.wait_for(sdk.chat.completions.create(model="openai/gpt-4o", messages=HI), 5)  # not asked
    assert len(fake.received) == 2
    await asyncio.sleep(1.6)
    later = asyncio.create_task(sdk.chat.completions.create(model="openai/gpt-4o", messages=HI))
    [again] = await waiting(http, gw.url)
    await decide(http, gw.url, again["id"], "allow_always")
    await asyncio.wait_for(later, 10)
    await asyncio.wait_for(sdk.chat.completions.create(model="openai/gpt-4o", messages=HI), 5)
    actions = [r.action for r in await audit_records(gw)]
    assert sorted(actions) == ["allow_always", "allow_for", "granted", "granted"]


async def test_bad_decisions_are_refused(fake, start_gateway, http):
    gw = await start_gateway(config(fake.base_url))
    async with http.post(f"{gw.url}/admin/api/approvals/x", json={"decision": "allow_for"}, headers=ROOT) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["param"] == "seconds"
    async with http.post(f"{gw.url}/admin/api/approvals/x", json={"decision": "maybe"}, headers=ROOT) as resp:
        assert resp.status == 400
    async with http.post(f"{gw.url}/admin/api/approvals/x", json={"decision": "deny"}, headers=ROOT) as resp:
        assert resp.status == 404
    async with http.get(f"{gw.url}/admin/api/approvals", headers=bearer()) as resp:
        assert resp.status == 403  # alice is no admin


async def test_a_stream_is_held_before_its_first_byte_then_allowed(fake, start_gateway, http):
    gw = await start_gateway(config(fake.base_url))
    body = {"model": "openai/gpt-4o", "messages": HI, "stream": True}
    opened = asyncio.create_task(http.post(f"{gw.url}/v1/chat/completions", json=body, headers=bearer()))
    [approval] = await waiting(http, gw.url)
    await asyncio.sleep(0.2)
    assert not opened.done()  # not even the response headers
    await decide(http, gw.url, approval["id"], "allow_once")
    async with await asyncio.wait_for(opened, 10) as resp:
        assert resp.status == 200
        events = await sse_events(resp)
    assert events[-1] == "[DONE]" and events[0]["choices"][0]["delta"]["role"] == "assistant"


async def test_a_client_that_leaves_takes_its_approval_away(fake, start_gateway, http):
    gw = await start_gateway(config(fake.base_url))
    async with aiohttp.ClientSession() as leaving:
        task = asyncio.create_task(
            leaving.post(
                f"{gw.url}/v1/chat/completions", json={"model": "openai/gpt-4o", "messages": HI}, headers=bearer()
            )
        )
        await waiting(http, gw.url)
        task.cancel()
    assert await waiting(http, gw.url, count=0) == [] or await _emptied(http, gw.url)
    async with asyncio.timeout(10):
        while not [r for r in await audit_records(gw) if r.action == "abandoned"]:
            await asyncio.sleep(0.05)
    assert fake.received == []


async def _emptied(http: aiohttp.ClientSession, url: str) -> bool:
    async with asyncio.timeout(10):
        while await waiting(http, url, count=0):
            await asyncio.sleep(0.05)
    return True


class Hook:
    """A webhook receiver on 127.0.0.1: fails its first ``failures`` posts with a 500."""

    def __init__(self, failures: int = 0) -> None:
        self.failures, self.received = failures, []
        self.runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hooks/{token}", self._post)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/hooks/{WEBHOOK_TOKEN}"

    async def _post(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        if len(self.received) <= self.failures:
            return web.Response(status=500)
        return web.Response(status=204)


@pytest.mark.parametrize("failures", [0, 1])
async def test_the_webhook_is_told_and_retried_and_never_blocks(fake, start_gateway, http, failures, caplog):
    from tests import leakcheck

    leakcheck.register(WEBHOOK_TOKEN)
    hook = Hook(failures)
    url = await hook.start()
    try:
        gw = await start_gateway(config(fake.base_url, webhook=url))
        held = asyncio.create_task(gw.sdk().chat.completions.create(model="openai/gpt-4o", messages=HI))
        [approval] = await waiting(http, gw.url)
        async with asyncio.timeout(10):
            while len(hook.received) < failures + 1:
                await asyncio.sleep(0.05)
        notice = hook.received[-1]
        assert notice["approval_id"] == approval["id"] and notice["client"] == "alice"
        assert notice["what"] == "openai/gpt-4o" and notice["rule"] == "openai/gpt-4o"
        assert notice["link"] == f"{gw.url}/ui/#approvals"
        await decide(http, gw.url, approval["id"], "allow_once")
        await asyncio.wait_for(held, 10)
    finally:
        await hook.runner.cleanup()
    assert not any(WEBHOOK_TOKEN in r.getMessage() for r in caplog.records)


async def test_a_secret_is_refused_before_any_admin_is_asked(fake, start_gateway, http):
    """The scan comes first: a request a rule would hold and its secret refuses (``block``) is never held,
    listed, nor told to the webhook; it gets its 403 for the secret at once."""
    hook = Hook()
    url = await hook.start()
    try:
        gw = await start_gateway(config(fake.base_url, webhook=url, secrets="block"))
        body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": f"key {AWS_KEY}"}]}
        async with asyncio.timeout(5), http.post(f"{gw.url}/v1/chat/completions", json=body, headers=bearer()) as resp:
            assert resp.status == 403
            assert "AWS Access Key in messages[0].content" in (await resp.json())["error"]["message"]
        assert await waiting(http, gw.url, count=0) == []
        assert [r.actor for r in await audit_records(gw)] == ["secrets"] and hook.received == []
    finally:
        await hook.runner.cleanup()


async def test_a_dead_webhook_does_not_hold_up_the_request(fake, start_gateway, http):
    from tests.redisserver import free_port

    gw = await start_gateway(config(fake.base_url, webhook=f"http://127.0.0.1:{free_port()}/hooks/{WEBHOOK_TOKEN}"))
    held = asyncio.create_task(gw.sdk().chat.completions.create(model="openai/gpt-4o", messages=HI))
    [approval] = await waiting(http, gw.url)
    began = time.monotonic()
    await decide(http, gw.url, approval["id"], "allow_once")
    await asyncio.wait_for(held, 10)
    assert time.monotonic() - began < 3  # the webhook's retries go on without it


def test_rules_are_checked_in_the_config(tmp_path):
    from gateway import config as gwconfig
    from providers.registry import TYPES

    data: dict[str, Any] = config("http://127.0.0.1:9/v1", rules=[{"match": "x", "action": "maybe"}])
    data["firewall"] = {"secrets": "sometimes", "webhook": "ftp://x", "ask_timeout": 0}
    with pytest.raises(gwconfig.ConfigError) as caught:
        gwconfig.parse(data, {}, types=TYPES)
    problems = "\n".join(caught.value.problems)
    for path in ("strategies[0].firewall[0].action", "firewall.secrets", "firewall.webhook", "firewall.ask_timeout"):
        assert path in problems
    for rules, timeout, why in (
        ([{"match": 5, "action": "deny"}], 10, "strategies[0].firewall[0].match: expected a string"),
        ([], float("inf"), "firewall.ask_timeout: expected a number, not inf"),
        ([], float("nan"), "firewall.ask_timeout: expected a number, not nan"),
        ([], "12", "firewall.ask_timeout: expected a number"),
    ):
        data = config("http://127.0.0.1:9/v1", rules=rules, ask_timeout=timeout)
        with pytest.raises(gwconfig.ConfigError) as caught:
            gwconfig.parse(data, {}, types=TYPES)
        assert why in "\n".join(caught.value.problems)
    data = config("http://127.0.0.1:9/v1", ask_timeout="${ASK_TIMEOUT}")
    assert gwconfig.parse(data, {"ASK_TIMEOUT": "12"}, types=TYPES).firewall.ask_timeout == 12
    data = config("http://127.0.0.1:9/v1")
    data["firewall"] = {"secrets": False}  # YAML's reading of a bare `off`
    assert gwconfig.parse(data, {}, types=TYPES).firewall.secrets == "off"
