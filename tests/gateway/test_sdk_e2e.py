"""The official openai SDK against a running gateway, as users run it."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import ALICE, BOB, CAROL, standard_config
from tests.fakes.openai_upstream import USAGE, Script


async def test_models_lists_what_the_strategy_allows(gw):
    async with gw.sdk() as client:
        ids = [m.id async for m in client.models.list()]
    assert ids[0] == "localrouter/auto"
    assert set(ids) == {
        "localrouter/auto",
        "openai/gpt-4o-mini",
        "openai/text-embedding-3-small",
        "backup/gpt-4o-mini",
        "backup/text-embedding-3-small",
    }
    async with gw.sdk(BOB) as client:
        page = await client.models.list()
    assert [(m.id, m.owned_by, m.object) for m in page.data] == [("backup/gpt-4o-mini", "backup", "model")]
    assert page.data[0].created == 1700000000  # discovered from the upstream's own list


async def test_chat_completion(gw, upstreams):
    primary, _ = upstreams
    async with gw.sdk() as client:
        out = await client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], temperature=0.2
        )
    assert out.choices[0].message.content == "Hello from primary"
    assert out.model == "openai/gpt-4o-mini"
    assert out.usage.total_tokens == USAGE["total_tokens"]
    sent = primary.received[-1]
    assert sent.body["model"] == "gpt-4o-mini" and sent.body["temperature"] == 0.2
    assert sent.headers["Authorization"] == "Bearer sk-upstream-primary-key"


async def test_chat_stream_role_first_usage_last(gw):
    async with gw.sdk() as client:
        stream = await client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [c async for c in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "w0 w1 w2 "  # every chunk has choices
    assert {c.model for c in chunks} == {"openai/gpt-4o-mini"}
    # not asked for apart: the usage rides on the last chunk, the finish_reason one
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage.total_tokens == USAGE["total_tokens"]


async def test_stream_through_auto_chain_falls_back(gw, upstreams):
    primary, _ = upstreams
    primary.queue(Script(status=503))
    async with gw.sdk() as client:
        stream = await client.chat.completions.create(
            model="localrouter/auto", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [c async for c in stream]
    assert {c.model for c in chunks} == {"backup/gpt-4o-mini"}


async def test_completions_and_embeddings(gw):
    async with gw.sdk() as client:
        out = await client.completions.create(model="openai/gpt-4o-mini", prompt="Say hi", max_tokens=5)
        assert out.choices[0].text == "Hello from primary" and out.model == "openai/gpt-4o-mini"
        emb = await client.embeddings.create(model="openai/text-embedding-3-small", input=["a", "b"])
    assert [d.index for d in emb.data] == [0, 1] and emb.data[1].embedding == [0.1, 0.2, 1.0]
    assert emb.model == "openai/text-embedding-3-small" and emb.usage.prompt_tokens == USAGE["prompt_tokens"]


async def test_completions_stream(gw):
    async with gw.sdk() as client:
        stream = await client.completions.create(model="openai/gpt-4o-mini", prompt="x", stream=True)
        chunks = [c async for c in stream]
    assert "".join(c.choices[0].text for c in chunks) == "w0 w1 w2 "  # every chunk has choices
    assert chunks[-1].usage.completion_tokens == USAGE["completion_tokens"] and chunks[-1].choices[0].finish_reason


MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "key, model, error",
    [
        ("lr-nobody-0123456789abcdefghij", "openai/gpt-4o-mini", openai.AuthenticationError),
        (CAROL, "openai/gpt-4o-mini", openai.AuthenticationError),
        (BOB, "openai/gpt-4o-mini", openai.PermissionDeniedError),
        (ALICE, "openai/gpt-5-nonexistent", openai.NotFoundError),
        (ALICE, "nowhere/gpt-4o-mini", openai.NotFoundError),
        (BOB, "localrouter/auto", openai.NotFoundError),
    ],
)
async def test_client_errors_raise_the_sdk_class(gw, key, model, error):
    async with gw.sdk(key) as client:
        with pytest.raises(error) as info:
            await client.chat.completions.create(model=model, messages=MESSAGES)
    assert set(info.value.body) == {"message", "type", "param", "code"}


async def test_upstream_400_is_bad_request_without_fallback(gw, upstreams):
    primary, backup = upstreams
    primary.queue(
        Script(
            status=400,
            body={
                "error": {
                    "message": "logit_bias is wrong",
                    "type": "invalid_request_error",
                    "param": "logit_bias",
                    "code": None,
                }
            },
        )
    )
    async with gw.sdk() as client:
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES, logit_bias={"x": 500})
    assert info.value.body["message"].startswith("logit_bias is wrong") and info.value.body["param"] == "logit_bias"
    assert backup.received == [r for r in backup.received if r.path.endswith("/models")]


async def test_all_rate_limited_is_rate_limit_error(gw, upstreams):
    for fake in upstreams:
        fake.queue(Script(status=429, headers={"Retry-After": "7"}))
    async with gw.sdk() as client:
        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    assert info.value.response.headers["Retry-After"] == "7"


async def test_chain_exhausted_is_internal_server_error(gw, upstreams):
    primary, backup = upstreams
    primary.queue(Script(status=500))
    backup.queue(Script(status=502))
    async with gw.sdk() as client:
        with pytest.raises(openai.InternalServerError) as info:
            await client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    assert info.value.status_code == 503
    message = info.value.body["message"]
    assert "openai/gpt-4o-mini: answered 500" in message and "backup/gpt-4o-mini: answered 502" in message


async def test_completions_on_provider_without_it_is_bad_request(upstreams, start_gateway):
    data = standard_config(*upstreams)
    data["strategies"][0]["fallbacks"] = {}
    gw = await start_gateway(data)
    async with gw.sdk() as client:
        with pytest.raises(openai.BadRequestError) as info:
            await client.completions.create(model="backup/gpt-4o-mini", prompt="x")
    assert info.value.body["code"] == "unsupported_endpoint"


async def test_mid_stream_failure_raises_in_the_sdk(gw, upstreams):
    primary, _ = upstreams
    primary.queue(Script(cut_after=2))
    async with gw.sdk() as client:
        stream = await client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES, stream=True)
        got = []
        with pytest.raises(openai.APIError) as info:
            async for chunk in stream:
                got.append(chunk)
    assert len(got) == 2
    assert "failed mid-way" in info.value.message


async def test_models_retrieve_what_the_client_may_use(gw, http):
    async with gw.sdk() as client:
        found = await client.models.retrieve("openai/gpt-4o-mini")
        auto = await client.models.retrieve("localrouter/auto")
    assert (found.id, found.object, found.owned_by) == ("openai/gpt-4o-mini", "model", "openai")
    assert isinstance(found.created, int) and found.created > 0
    assert (auto.id, auto.owned_by) == ("localrouter/auto", "localrouter")
    async with gw.sdk(BOB) as client:
        discovered = await client.models.retrieve("backup/gpt-4o-mini")
    assert discovered.created == 1700000000  # as /models lists it
    async with http.get(gw.url + "/metrics") as resp:
        metrics = await resp.text()
    assert 'requests_total{client="bob",endpoint="models",' in metrics  # one bounded label, not one per id


@pytest.mark.parametrize(
    "key, model",
    [
        (ALICE, "openai/gpt-5-nonexistent"),  # not in the provider's list
        (ALICE, "nowhere/gpt-4o-mini"),  # no such provider
        (ALICE, "gpt-4o-mini"),  # not a provider/model id
        (BOB, "openai/gpt-4o-mini"),  # exists, not allowed: not revealed either
        (BOB, "localrouter/auto"),  # no auto chain for this client
    ],
)
async def test_models_retrieve_anything_else_is_not_found(gw, key, model):
    async with gw.sdk(key) as client:
        with pytest.raises(openai.NotFoundError) as info:
            await client.models.retrieve(model)
    assert set(info.value.body) == {"message", "type", "param", "code"}
    assert info.value.body["code"] == "model_not_found" and info.value.body["type"] == "invalid_request_error"


async def test_models_retrieve_needs_the_client_secret(gw):
    async with gw.sdk("lr-nobody-0123456789abcdefghij") as client:
        with pytest.raises(openai.AuthenticationError):
            await client.models.retrieve("openai/gpt-4o-mini")
