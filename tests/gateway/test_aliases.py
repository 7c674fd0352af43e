"""``strategies[].aliases``: the model names agents hard-code land on the team's targets, over real HTTP."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from gateway import config as gwconfig
from providers.registry import TYPES
from tests import leakcheck
from tests.conftest import ALICE, BOB, ENV, standard_config
from tests.fakes.openai_upstream import Script

DAVE = "lr-dave-secret-0123456789abcdefgh"
leakcheck.register(DAVE)

ALIASES = {
    "claude-sonnet-4-5": "backup/gpt-4o-mini",
    "gpt-5-codex": "openai/gpt-4o-mini",
    "text-embedding-ada-002": "backup/text-embedding-3-small",
    "agent-auto": "localrouter/auto",
    "claude-haiku-*": "openai/gpt-4o-mini",  # written before the wider glob: it wins for haiku names
    "claude-*": "backup/gpt-4o-mini",
    "text-embedding-*": "openai/text-embedding-3-small",
}
HI = [{"role": "user", "content": "hi"}]


def alias_config(primary, backup) -> dict[str, Any]:
    data = standard_config(primary, backup)
    default, narrow = data["strategies"]
    default["aliases"] = ALIASES
    default["auto"] = ["backup/gpt-4o-mini", "openai/gpt-4o-mini"]
    narrow["aliases"] = {"gpt-5-codex": "openai/gpt-4o-mini", "claude-sonnet-4-5": "backup/gpt-4o-mini"}
    data["strategies"].append({"name": "catchall", "allow": ["*"], "aliases": {"*": "openai/gpt-4o-mini"}})
    data["clients"].append({"name": "dave", "secret": DAVE, "strategy": "catchall"})
    return data


@pytest.fixture
async def agw(upstreams, start_gateway):
    return await start_gateway(alias_config(*upstreams))


async def chat(gw, model: str, key: str = ALICE, stream: bool = False) -> tuple[str, str, dict[str, Any]]:
    """(the answer's model, its x-localrouter-model, its usage record) for a chat request for ``model``."""
    async with gw.sdk(key) as client:
        raw = await client.chat.completions.with_raw_response.create(model=model, messages=HI, stream=stream)
        if stream:
            chunks = [c async for c in raw.parse()]
            assert len({c.model for c in chunks}) == 1 and "".join(c.choices[0].delta.content or "" for c in chunks)
            answered = chunks[0].model
        else:
            answered = raw.parse().model
        record = await client.get("/generation", cast_to=dict, options={"params": {"id": raw.headers["x-request-id"]}})
    return answered, raw.headers["x-localrouter-model"], record


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("requested", "served"),
    [
        ("claude-sonnet-4-5", "backup/gpt-4o-mini"),  # exact
        ("gpt-5-codex", "openai/gpt-4o-mini"),  # exact
        ("claude-haiku-4-5-20251001", "openai/gpt-4o-mini"),  # the first glob written that matches
        ("claude-opus-4-1", "backup/gpt-4o-mini"),  # the next glob
        ("openai/gpt-4o-mini", "openai/gpt-4o-mini"),  # a real id is itself
    ],
)
async def test_chat_goes_to_the_alias_target(agw, upstreams, requested, served, stream):
    model, header, record = await chat(agw, requested, stream=stream)
    assert (model, header) == (served, served)
    fake = upstreams[0] if served.startswith("openai/") else upstreams[1]
    assert fake.received[-1].body["model"] == "gpt-4o-mini"
    assert (record["model_requested"], record["model"]) == (requested, served)


@pytest.mark.parametrize(
    ("requested", "served"),
    [
        ("text-embedding-ada-002", "backup/text-embedding-3-small"),  # exact, before the glob that also matches
        ("text-embedding-3-large", "openai/text-embedding-3-small"),  # glob
    ],
)
async def test_embeddings_go_to_the_alias_target(agw, upstreams, requested, served):
    async with agw.sdk() as client:
        out = await client.embeddings.create(model=requested, input=["a"])
    assert out.model == served
    fake = upstreams[0] if served.startswith("openai/") else upstreams[1]
    assert fake.received[-1].path == "/v1/embeddings"
    assert fake.received[-1].body["model"] == "text-embedding-3-small"


async def test_an_alias_to_auto_takes_the_auto_chain(agw, upstreams):
    primary, backup = upstreams
    backup.queue(Script(status=503))  # the auto chain starts with backup; its next target is openai
    model, header, record = await chat(agw, "agent-auto")
    assert (model, header) == ("openai/gpt-4o-mini", "openai/gpt-4o-mini")
    assert backup.received[-1].body["model"] == "gpt-4o-mini"
    assert (record["model_requested"], record["model"]) == ("agent-auto", "openai/gpt-4o-mini")


async def test_the_allow_list_applies_to_the_target(agw, upstreams):
    async with agw.sdk(BOB) as client:
        with pytest.raises(openai.PermissionDeniedError) as err:
            await client.chat.completions.create(model="gpt-5-codex", messages=HI)
        assert "`gpt-5-codex` (an alias of `openai/gpt-4o-mini`)" in err.value.message
        ok = await client.chat.completions.create(model="claude-sonnet-4-5", messages=HI)
    assert ok.model == "backup/gpt-4o-mini"
    assert not upstreams[0].received  # openai never asked


async def test_a_glob_never_captures_a_real_model_id(agw, upstreams):
    assert (await chat(agw, "backup/gpt-4o-mini", DAVE))[:2] == ("backup/gpt-4o-mini",) * 2
    assert (await chat(agw, "anything-at-all", DAVE))[:2] == ("openai/gpt-4o-mini",) * 2
    async with agw.sdk(DAVE) as client:
        with pytest.raises(openai.NotFoundError):  # a configured provider's model it does not serve
            await client.chat.completions.create(model="openai/gpt-9", messages=HI)


async def test_models_lists_exact_aliases_whose_target_is_allowed(agw):
    async with agw.sdk() as client:
        page = await client.models.list()
    listed = {m.id: m.owned_by for m in page.data}
    assert page.data[0].id == "localrouter/auto"
    assert {k: listed.get(k) for k in ALIASES if "*" not in k} == {
        "claude-sonnet-4-5": "backup",
        "gpt-5-codex": "openai",
        "text-embedding-ada-002": "backup",
        "agent-auto": "localrouter",
    }
    assert not [m for m in listed if "*" in m]  # globs name no model
    assert "openai/gpt-4o-mini" in listed and all(m.created for m in page.data)
    async with agw.sdk(BOB) as client:
        ids = [m.id async for m in client.models.list()]
    assert ids == ["claude-sonnet-4-5", "backup/gpt-4o-mini"]  # gpt-5-codex's target is not bob's


async def test_models_retrieve_an_alias(agw):
    async with agw.sdk() as client:
        exact = await client.models.retrieve("claude-sonnet-4-5")
        globbed = await client.models.retrieve("claude-haiku-4-5")
        auto = await client.models.retrieve("agent-auto")
    assert (exact.id, exact.owned_by, exact.object) == ("claude-sonnet-4-5", "backup", "model")
    assert exact.created == 1700000000  # the target's, from the upstream's list
    assert (globbed.id, globbed.owned_by) == ("claude-haiku-4-5", "openai")
    assert (auto.id, auto.owned_by) == ("agent-auto", "localrouter")
    async with agw.sdk(BOB) as client:
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("gpt-5-codex")


@pytest.mark.parametrize(
    ("requested", "meant"), [("gpt-5-codx", "gpt-5-codex"), ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5")]
)
async def test_an_unknown_name_is_told_the_aliases_it_may_mean(agw, requested, meant):
    async with agw.sdk() as client:
        with pytest.raises(openai.NotFoundError) as err:
            await client.chat.completions.create(model=requested, messages=HI)
    assert f"Did you mean `{meant}`" in err.value.message


def problems(aliases: Any) -> list[str]:
    data = standard_config(_Fake(URL), _Fake(URL))
    data["strategies"][1]["aliases"] = aliases
    with pytest.raises(gwconfig.ConfigError) as err:
        gwconfig.parse(data, ENV, types=TYPES)
    return err.value.problems


class _Fake:
    def __init__(self, url: str) -> None:
        self.base_url = url


URL = "http://127.0.0.1:9/v1"


@pytest.mark.parametrize(
    ("aliases", "problem"),
    [
        (["claude-*"], "strategies[1].aliases: expected a mapping of model name (or glob) to a model id"),
        ({"claude-*": ["openai/gpt-4o-mini"]}, "strategies[1].aliases.claude-*: expected a string"),
        ({"claude-*": "gpt-4o-mini"}, "strategies[1].aliases.claude-*: 'gpt-4o-mini' is not a 'provider/model' id"),
        ({"sonnet": "nope/x"}, "strategies[1].aliases.sonnet: unknown provider 'nope' in 'nope/x'"),
        ({"sonnet": "openai/gpt-9"}, "strategies[1].aliases.sonnet: provider 'openai' does not list model 'gpt-9'"),
        (
            {"openai/gpt-5": "openai/gpt-4o-mini"},
            "strategies[1].aliases.openai/gpt-5: ambiguous: 'openai/gpt-5' is among the model ids of 'openai'; "
            "name the alias without it",
        ),
        (
            {"backup/*": "openai/gpt-4o-mini"},
            "strategies[1].aliases.backup/*: ambiguous: 'backup/*' is among the model ids of 'backup'; "
            "name the alias without it",
        ),
        (
            {"localrouter/fast": "openai/gpt-4o-mini"},
            "strategies[1].aliases.localrouter/fast: ambiguous: 'localrouter/fast' is among the model ids of "
            "'localrouter'; name the alias without it",
        ),
        (
            {"fast": "localrouter/auto"},
            "strategies[1].aliases.fast: the target is localrouter/auto, but this strategy has no auto chain",
        ),
        ({7: "openai/gpt-4o-mini"}, "strategies[1].aliases.7: an alias name must be a non-empty string"),
    ],
)
def test_config_problems_name_their_path(aliases, problem):
    assert problems(aliases) == [problem]


def test_config_accepts_an_alias_to_auto_and_a_name_with_a_slash_of_no_provider():
    data = standard_config(_Fake(URL), _Fake(URL))
    data["strategies"][0]["aliases"] = {"fast": "localrouter/auto", "anthropic/claude-*": "backup/gpt-4o-mini"}
    cfg = gwconfig.parse(data, ENV, types=TYPES)
    assert dict(cfg.strategies[0].aliases) == {"fast": "localrouter/auto", "anthropic/claude-*": "backup/gpt-4o-mini"}
