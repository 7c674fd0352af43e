"""Anthropic's Messages API end to end: the official ``anthropic`` SDK against the gateway on a real socket,
in front of real (fake) upstreams on 127.0.0.1 of three wire formats: an OpenAI-compatible one (translated
to chat), Anthropic (native pass-through) and Gemini (translated twice: Messages -> chat -> Gemini). Each
is reached through a fallback from a target that fails first."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ALICE, BOB, bearer
from tests.fakes.openai_upstream import Script
from tests.fakes.wire import COMPLETION, KEY, PROMPT, WireFake

KINDS = ("openai", "anthropic", "gemini")
MODELS = {"openai": "m", "anthropic": "claude", "gemini": "gem"}
CACHE = {"cache_creation_input_tokens": 30, "cache_read_input_tokens": 200}
PRICE = {"input_per_1m": 3, "output_per_1m": 15, "cache_read_per_1m": 0.3, "cache_write_per_1m": 3.75}
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
HI = [{"role": "user", "content": "hi"}]


def target(kind: str) -> str:
    return f"{kind}/{MODELS[kind]}"


def via_down(kind: str) -> str:
    """A model whose chain is a target that always fails, then ``kind``'s."""
    return f"down/to-{kind}"


class Stack:
    def __init__(self, gw: Any, fakes: dict[str, WireFake], down: Any) -> None:
        self.gw, self.fakes, self.down = gw, fakes, down
        self.url = gw.url
        self.clients: list[anthropic.AsyncAnthropic] = []

    def sdk(self, key: str = ALICE, bearer_token: bool = False) -> anthropic.AsyncAnthropic:
        """The SDK as Claude Code is set up: the base URL without /v1, the key as x-api-key or a Bearer token."""
        auth = {"auth_token": key} if bearer_token else {"api_key": key}
        client = anthropic.AsyncAnthropic(base_url=self.url, max_retries=0, timeout=20, **auth)
        self.clients.append(client)
        return client


def provider(name: str, kind: str, base_url: str, models: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "base_url": base_url,
        "api_key": KEY,
        "models": models,
        "timeouts": {"first_byte": 5, "idle": 5},
        **extra,
    }


def config(fakes: dict[str, WireFake], down_url: str, **strategy: Any) -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1", "port": 0},
        "providers": [
            provider("down", "openai", down_url, [*(f"to-{k}" for k in KINDS), "alone"]),
            *(
                provider(k, k, fakes[k].base_url, [MODELS[k]], prices={MODELS[k]: PRICE} if k == "anthropic" else {})
                for k in KINDS
            ),
            provider("claude-then-openai", "anthropic", fakes["anthropic"].base_url, ["claude"]),
        ],
        "strategies": [
            {
                "name": "default",
                "allow": ["*"],
                "fallbacks": {
                    **{via_down(k): [target(k)] for k in KINDS},
                    "claude-then-openai/claude": ["openai/m"],
                },
                "auto": ["down/to-openai", "anthropic/claude", "openai/m"],
                **strategy,
            },
            {"name": "narrow", "allow": ["openai/m"]},
        ],
        "clients": [
            {"name": "alice", "secret": "${ALICE_SECRET}", "strategy": "default"},
            {"name": "bob", "secret": BOB, "strategy": "narrow"},
        ],
    }


@pytest.fixture
async def stack(wire_fake, fake_upstream, start_gateway) -> AsyncIterator[Stack]:
    fakes = {k: await wire_fake(k, name=k) for k in KINDS}
    down = await fake_upstream("down")
    down.default = Script(status=503)
    stack = Stack(await start_gateway(config(fakes, down.base_url)), fakes, down)
    yield stack
    for client in stack.clients:
        await client.close()


def hello(kind: str, system: str = "", turns: int = 1) -> str:
    return f"Hello from {kind}" + (f" [system: {system}]" if system else "") + f" (turn {turns})"


# --- messages.create ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_create_falls_back_to_each_kind_of_target(stack, kind):
    raw = await stack.sdk().messages.with_raw_response.create(
        model=via_down(kind), max_tokens=64, system="Be brief.", messages=HI
    )
    message = await raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == hello(kind, "Be brief.")
    assert message.model == target(kind) and message.role == "assistant" and message.type == "message"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (PROMPT, COMPLETION)
    assert raw.headers["x-localrouter-provider"] == kind and raw.headers["x-localrouter-model"] == target(kind)
    assert raw.headers["x-localrouter-attempts"] == "2"
    assert len(stack.down.received) == 1 and stack.fakes[kind].seen[-1].system == "Be brief."


async def test_the_secret_may_come_as_a_bearer_token_as_claude_code_sends_anthropic_auth_token(stack):
    message = await stack.sdk(bearer_token=True).messages.create(model=target("openai"), max_tokens=64, messages=HI)
    assert message.content[0].text == hello("openai")


async def test_the_beta_messages_api_as_claude_code_calls_it(stack):
    message = await stack.sdk(bearer_token=True).beta.messages.create(
        model=target("anthropic"), max_tokens=64, messages=HI, betas=[BETA]
    )
    assert message.content[0].text == hello("anthropic") and message.model == target("anthropic")
    path, headers, _ = stack.fakes["anthropic"].raw[-1]
    assert path == "/v1/messages" and headers["anthropic-beta"] == BETA


# --- messages.stream -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_a_text_stream_falls_back_to_each_kind_of_target(stack, kind):
    async with stack.sdk().messages.stream(model=via_down(kind), max_tokens=64, messages=HI) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == hello(kind) and final.content[0].text == text
    assert final.model == target(kind) and final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (PROMPT, COMPLETION)
    assert stack.fakes[kind].seen[-1].stream


@pytest.mark.parametrize("kind", KINDS)
async def test_a_tool_use_stream_then_the_tool_result_round_trip(stack, kind):
    client = stack.sdk()
    async with client.messages.stream(
        model=via_down(kind), max_tokens=64, tools=[WEATHER], messages=[{"role": "user", "content": "Paris?"}]
    ) as stream:
        call = await stream.get_final_message()
    assert call.stop_reason == "tool_use"
    (use,) = [b for b in call.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Paris"} and use.id
    history = [
        {"role": "user", "content": "Paris?"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in call.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
    ]
    answer = await client.messages.create(model=via_down(kind), max_tokens=64, tools=[WEATHER], messages=history)
    assert answer.content[0].text == "The weather in Paris is sunny" and answer.stop_reason == "end_turn"


@pytest.mark.parametrize("kind", ("openai", "gemini"))
async def test_a_tool_use_answer_translated(stack, kind):
    message = await stack.sdk().messages.create(
        model=target(kind), max_tokens=64, tools=[WEATHER], messages=[{"role": "user", "content": "Paris?"}]
    )
    assert message.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in message.content] == [("tool_use", "get_weather", {"city": "Paris"})]


# --- native pass-through -------------------------------------------------------------------------------

NATIVE: dict[str, Any] = {
    "max_tokens": 64,
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "A greeting.", "signature": "EqQBCgIYAhIM"},
                {"type": "text", "text": "Hello!"},
            ],
        },
        {"role": "user", "content": "again"},
    ],
}
BETA = "interleaved-thinking-2025-05-14"


@pytest.mark.parametrize("stream", (False, True))
async def test_an_anthropic_target_gets_the_body_as_sent_and_its_usage_is_priced_with_cache_prices(stack, http, stream):
    fake = stack.fakes["anthropic"]
    fake.extra_usage = CACHE
    body = {"model": via_down("anthropic"), **copy.deepcopy(NATIVE)}
    headers = {"x-api-key": ALICE, "anthropic-version": "2023-06-01", "anthropic-beta": BETA}
    async with http.post(stack.url + "/v1/messages", json={**body, "stream": stream}, headers=headers) as resp:
        assert resp.status == 200
        request_id = resp.headers["X-Request-ID"]
        raw = await resp.read()
    path, sent_headers, sent = fake.raw[-1]
    assert path == "/v1/messages" and sent == {**body, "stream": stream, "model": "claude"}  # thinking, cache_control
    assert sent_headers["anthropic-beta"] == BETA and sent_headers["x-api-key"] == KEY
    if stream:
        events = sse(raw)
        assert b"[DONE]" not in raw and [name for name, _ in events][-1] == "message_stop"
        assert all(name == data["type"] for name, data in events)
        assert events[0][1]["message"]["model"] == target("anthropic")
        assert events[0][1]["message"]["usage"]["cache_read_input_tokens"] == CACHE["cache_read_input_tokens"]
    else:
        message = json.loads(raw)
        assert message["model"] == target("anthropic") and message["usage"] == {
            "input_tokens": PROMPT,
            "output_tokens": COMPLETION,
            **CACHE,
        }
    record = await generation(http, stack.url, request_id)
    assert record["endpoint"] == "messages" and record["model"] == target("anthropic") and record["stream"] is stream
    assert record["prompt_tokens"] == PROMPT + sum(CACHE.values()) and record["completion_tokens"] == COMPLETION
    cost = (PROMPT * 3 + 200 * 0.3 + 30 * 3.75 + COMPLETION * 15) / 1_000_000
    assert record["cost_usd"] == pytest.approx(cost)


def sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of every event of an Anthropic event stream."""
    out = []
    for block in raw.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


async def generation(http, url: str, request_id: str) -> dict[str, Any]:
    for _ in range(50):  # usage records are written in batches, off the request path
        async with http.get(url + "/v1/generation", params={"id": request_id}, headers=bearer()) as resp:
            if resp.status == 200:
                return await resp.json()
        await asyncio.sleep(0.1)
    raise AssertionError(f"no usage record for {request_id}")


# --- count_tokens --------------------------------------------------------------------------------------


async def test_count_tokens_is_anthropics_own_for_an_anthropic_target(stack):
    raw = await stack.sdk().messages.with_raw_response.count_tokens(model=target("anthropic"), **without_limit())
    assert (await raw.parse()).input_tokens == PROMPT
    assert "x-localrouter-estimate" not in raw.headers and raw.headers["x-localrouter-provider"] == "anthropic"
    path, _, sent = stack.fakes["anthropic"].raw[-1]
    assert path == "/v1/messages/count_tokens" and sent == {**without_limit(), "model": "claude"}


@pytest.mark.parametrize("kind", ("openai", "gemini"))
async def test_count_tokens_is_an_estimate_said_so_for_any_other_target(stack, kind):
    raw = await stack.sdk().messages.with_raw_response.count_tokens(
        model=target(kind), system="Be brief.", tools=[WEATHER], messages=[{"role": "user", "content": "hi there"}]
    )
    chars = len("Be brief.") + len("hi there") + len("get_weather") + len(WEATHER["description"])
    chars += len(json.dumps(WEATHER["input_schema"], separators=(",", ":")))
    assert (await raw.parse()).input_tokens == -(-chars // 4)
    assert raw.headers["x-localrouter-estimate"] == "true" and raw.headers["x-localrouter-model"] == target(kind)
    assert not stack.fakes[kind].raw  # nothing was asked upstream


async def test_count_tokens_estimates_when_the_anthropic_targets_before_another_failed(stack):
    stack.fakes["anthropic"].fail(529)
    client = stack.sdk()
    raw = await client.messages.with_raw_response.count_tokens(model="claude-then-openai/claude", **without_limit())
    assert (await raw.parse()).input_tokens == 1  # "hi": 2 characters
    assert raw.headers["x-localrouter-estimate"] == "true" and raw.headers["x-localrouter-model"] == "openai/m"
    assert raw.headers["x-localrouter-attempts"] == "1" and len(stack.fakes["anthropic"].raw) == 1
    assert not stack.fakes["openai"].raw  # the estimate asks nobody
    raw = await client.messages.with_raw_response.count_tokens(model="localrouter/auto", **without_limit())
    assert raw.headers["x-localrouter-estimate"] == "true" and raw.headers["x-localrouter-model"] == "down/to-openai"
    assert len(stack.fakes["anthropic"].raw) == 1 and not stack.down.received  # the chain's first is not Anthropic


def without_limit() -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "hi"}]}


# --- errors --------------------------------------------------------------------------------------------


def anthropic_error(exc: anthropic.APIStatusError, kind: str) -> None:
    assert exc.body["type"] == "error" and exc.body["error"]["type"] == kind, exc.body
    assert "request id" in exc.body["error"]["message"]


async def test_errors_raise_the_sdks_own_classes(stack):
    cases = [
        (stack.sdk(key="lr-not-a-client-0123456789abcdef"), target("openai"), anthropic.AuthenticationError, 401),
        (stack.sdk(key=BOB), target("anthropic"), anthropic.PermissionDeniedError, 403),
        (stack.sdk(), "nobody/serves-this", anthropic.NotFoundError, 404),
    ]
    kinds = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}
    for client, model, cls, status in cases:
        with pytest.raises(cls) as caught:
            await client.messages.create(model=model, max_tokens=64, messages=HI)
        assert caught.value.status_code == status
        anthropic_error(caught.value, kinds[status])


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "openai/m", "max_tokens": 0, "messages": HI}, "max_tokens"),
        ({"model": "openai/m", "messages": HI}, "max_tokens"),
        ({"model": "openai/m", "max_tokens": 8, "messages": "hi"}, "messages"),
        ({"max_tokens": 8, "messages": HI}, "model"),
        (
            {
                "model": "openai/m",
                "max_tokens": 8,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "document", "source": {"type": "text", "data": "x", "media_type": "t"}}],
                    }
                ],
            },
            "document",
        ),
    ],
)
async def test_a_bad_request_is_400_before_any_upstream_is_called(stack, body, param):
    with pytest.raises(anthropic.BadRequestError) as caught:
        await stack.sdk().post("/v1/messages", body=body, cast_to=anthropic.types.Message)
    anthropic_error(caught.value, "invalid_request_error")
    assert param in caught.value.body["error"]["message"]
    assert not any(fake.raw for fake in stack.fakes.values())


async def test_a_document_still_goes_to_an_anthropic_target_whose_fallback_cannot_take_it(stack):
    content = [{"type": "document", "source": {"type": "text", "data": "x", "media_type": "text/plain"}}]
    message = await stack.sdk().messages.create(
        model="localrouter/auto", max_tokens=64, messages=[{"role": "user", "content": content}]
    )
    assert message.model == target("anthropic")  # down (translated) was skipped, not asked
    assert not stack.down.received


async def test_upstream_failures_are_502_and_503_and_an_overloaded_anthropic_falls_back(stack):
    client = stack.sdk()
    with pytest.raises(anthropic.ServiceUnavailableError) as caught:  # an InternalServerError
        await client.messages.create(model="down/alone", max_tokens=64, messages=HI)
    assert caught.value.status_code == 503 and isinstance(caught.value, anthropic.InternalServerError)
    anthropic_error(caught.value, "overloaded_error")
    stack.down.default = Script(body=b"not json")
    with pytest.raises(anthropic.InternalServerError) as caught:
        await client.messages.create(model="down/alone", max_tokens=64, messages=HI)
    assert caught.value.status_code == 502
    anthropic_error(caught.value, "api_error")
    stack.fakes["anthropic"].fail(529)  # Anthropic's overloaded_error: the next target serves
    message = await client.messages.create(model="claude-then-openai/claude", max_tokens=64, messages=HI)
    assert message.model == "openai/m"
    stack.fakes["anthropic"].fail(529)
    with pytest.raises(anthropic.ServiceUnavailableError):  # none after it: the chain is exhausted
        await client.messages.create(model=target("anthropic"), max_tokens=64, messages=HI)


async def test_over_the_rate_limit_is_429_with_retry_after_and_the_limit_headers(
    wire_fake, fake_upstream, start_gateway, http
):
    fakes = {k: await wire_fake(k, name=k) for k in KINDS}
    down = await fake_upstream("down")
    gw = await start_gateway(config(fakes, down.base_url, rate_limits=[{"requests": 2, "per": "minute"}]))
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key=ALICE, max_retries=0) as client:
        raw = await client.messages.with_raw_response.create(model=target("openai"), max_tokens=8, messages=HI)
        assert raw.headers["x-ratelimit-limit-requests"] == "2" and raw.headers["x-ratelimit-remaining-requests"] == "1"
        await client.messages.count_tokens(model=target("openai"), **without_limit())  # counts as a request
        with pytest.raises(anthropic.RateLimitError) as caught:
            await client.messages.create(model=target("openai"), max_tokens=8, messages=HI)
    assert caught.value.status_code == 429 and int(caught.value.response.headers["retry-after"]) >= 1
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    anthropic_error(caught.value, "rate_limit_error")


async def test_a_body_over_the_limit_is_413(wire_fake, fake_upstream, start_gateway):
    fakes = {k: await wire_fake(k, name=k) for k in KINDS}
    down = await fake_upstream("down")
    data = config(fakes, down.base_url)
    data["server"]["max_body_bytes"] = 1024
    gw = await start_gateway(data)
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key=ALICE, max_retries=0) as client:
        with pytest.raises(anthropic.ContentTooLargeError) as caught:
            await client.messages.create(
                model=target("openai"), max_tokens=8, messages=[{"role": "user", "content": "x" * 2000}]
            )
    anthropic_error(caught.value, "request_too_large")


# --- a stream that fails after it started ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_a_stream_that_fails_mid_way_ends_with_an_error_event(stack, http, kind):
    stack.fakes[kind].fail_stream(3, "boom")
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with stack.sdk().messages.stream(model=target(kind), max_tokens=64, messages=HI) as stream:
            async for _ in stream.text_stream:
                pass
    assert (
        caught.value.body["error"]["type"] == "api_error" and "failed mid-way" in caught.value.body["error"]["message"]
    )
    stack.fakes[kind].fail_stream(3, "boom")
    async with http.post(
        stack.url + "/v1/messages",
        json={"model": target(kind), "max_tokens": 64, "messages": HI, "stream": True},
        headers={"x-api-key": ALICE},
    ) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        request_id = resp.headers["X-Request-ID"]
        raw = await resp.read()
    events = sse(raw)
    assert events[0][0] == "message_start" and events[-1][0] == "error" and b"[DONE]" not in raw
    record = await generation(http, stack.url, request_id)
    assert record["error_code"] == "stream_interrupted" and record["endpoint"] == "messages"


# --- observability ---------------------------------------------------------------------------------------


async def test_metrics_and_the_access_log_name_the_endpoint(stack, http):
    client = stack.sdk()
    await client.messages.create(model=target("openai"), max_tokens=8, messages=HI)
    async with client.messages.stream(model=target("anthropic"), max_tokens=8, messages=HI) as stream:
        await stream.get_final_message()
    await client.messages.count_tokens(model=target("gemini"), **without_limit())
    async with http.get(stack.url + "/metrics") as resp:
        text = await resp.text()
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in ("localrouter_requests_total", "localrouter_tokens_total"):
                found[s.name, tuple(sorted(s.labels.items()))] = s.value
    requests = {
        (labels["endpoint"], labels["model"]): value
        for (name, items), value in found.items()
        if name == "localrouter_requests_total"
        for labels in [dict(items)]
    }
    assert requests == {
        ("messages", target("openai")): 1,
        ("messages", target("anthropic")): 1,
        ("count_tokens", target("gemini")): 1,
    }
    tokens = {
        (labels["model"], labels["direction"]): value
        for (name, items), value in found.items()
        if name == "localrouter_tokens_total"
        for labels in [dict(items)]
    }
    assert tokens[target("anthropic"), "input"] == PROMPT and tokens[target("anthropic"), "output"] == COMPLETION
    for _ in range(50):
        lines = [line for line in stack.gw.access.lines if line["path"].startswith("/v1/messages")]
        if len(lines) == 3:
            break
        await asyncio.sleep(0.1)
    assert [line["endpoint"] for line in lines] == ["messages", "messages", "count_tokens"]
    assert lines[1]["stream"] and lines[1]["prompt_tokens"] == PROMPT


async def test_the_openapi_document_describes_both_operations_with_anthropics_errors(stack, http):
    async with http.get(stack.url + "/openapi.json") as resp:
        doc = await resp.json()
    create, count = doc["paths"]["/messages"]["post"], doc["paths"]["/messages/count_tokens"]["post"]
    for operation in (create, count):
        assert {"bearerAuth": []} in operation["security"] and {"apiKeyAuth": []} in operation["security"]
        for status in ("400", "401", "403", "404", "413", "429", "502", "503"):
            error = operation["responses"][status]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/AnthropicError"}, status
    stream = create["responses"]["200"]["content"]["text/event-stream"]["schema"]["description"]
    assert "message_start" in stream and "no `[DONE]`" in stream
    assert doc["components"]["securitySchemes"]["apiKeyAuth"] == {"type": "apiKey", "in": "header", "name": "x-api-key"}


@pytest.mark.parametrize("kind", KINDS)
async def test_a_long_answer_names_the_target_that_served_it(stack, kind):
    """An upstream answer large enough to be relayed as its own bytes (gateway.jsonx.Answer) still has its
    model rewritten, natively and translated."""
    system = "x" * 6000  # the fakes echo the system prompt into the answer
    message = await stack.sdk().messages.create(model=via_down(kind), max_tokens=64, system=system, messages=HI)
    assert message.model == target(kind)
    assert message.content[0].text == hello(kind, system)
