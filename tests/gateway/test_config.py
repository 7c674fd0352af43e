from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import yaml

from gateway import config
from gateway.config import ConfigError
from providers.registry import TYPES

GOOD = """
server: {host: 127.0.0.1, port: 3625}
providers:
  - name: openai
    type: openai
    base_url: https://api.openai.com/v1/
    api_key: ${OPENAI_API_KEY}
    models: [gpt-4o-mini, text-embedding-3-small]
    timeouts: {connect: 3, first_byte: 30}
  - name: ollama
    base_url: http://127.0.0.1:11434/v1
strategies:
  - name: default
    allow: ["openai/*", "ollama/*"]
    auto: [openai/gpt-4o-mini, ollama/llama3.2]
    fallbacks:
      openai/gpt-4o-mini: [ollama/llama3.2]
clients:
  - name: alice
    secret: ${ALICE_SECRET}
    strategy: default
  - name: bob
    secret_sha256: %s
    strategy: default
    enabled: false
""" % config.hash_secret("lr-bob-0123456789abcdef")

ENV = {"OPENAI_API_KEY": "sk-real-upstream-key", "ALICE_SECRET": "lr-alice-0123456789abcdef"}


def parse(text: str, env: dict[str, str] = ENV) -> config.Config:
    return config.parse(yaml.safe_load(text), env, types=TYPES)


def problems(text: str, env: dict[str, str] = ENV) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, env)
    return info.value.problems


def test_good_config_parses_into_typed_objects():
    cfg = parse(GOOD)
    openai, ollama = cfg.providers
    assert openai.base_url == "https://api.openai.com/v1"  # trailing slash dropped
    assert openai.api_key.reveal() == "sk-real-upstream-key"
    assert openai.models == ("gpt-4o-mini", "text-embedding-3-small")
    assert openai.timeouts.connect == 3 and openai.timeouts.first_byte == 30 and openai.timeouts.idle == 60
    assert ollama.type == "openai" and ollama.models is None and ollama.api_key is None
    assert cfg.strategies[0].fallbacks == {"openai/gpt-4o-mini": ("ollama/llama3.2",)}
    alice, bob = cfg.clients
    assert alice.secret_sha256 == config.hash_secret("lr-alice-0123456789abcdef")
    assert bob.enabled is False


def test_secrets_never_show_in_reprs():
    cfg = parse(GOOD)
    text = repr(cfg) + str(cfg)
    assert "sk-real-upstream-key" not in text and "lr-alice-0123456789abcdef" not in text
    assert cfg.clients[0].secret_sha256 not in text


def test_every_problem_is_reported_with_its_path():
    bad = """
server: {prot: 80, port: 99999}
providers:
  - {name: openai, base_url: https://api.openai.com/v1}
  - {name: broken, type: magic, base_url: not-a-url, timeouts: {conect: 1}}
  - {name: openai, base_url: http://x}
strategies:
  - {name: default, allow: ["*"], auto: [nowhere/model, openai], fallbacks: {openai/a: [ghost/b]}}
clients:
  - {name: alice, secret: short, strategy: fast}
  - {name: bob, strategy: default}
  - {name: "bad name", secret: "${MISSING_VAR}", strategy: default}
"""
    found = problems(bad)
    for expected in [
        "server.prot: unknown key",
        "server.port: must be <= 65535",
        "providers[1].type: unknown provider type 'magic' (known: anthropic, azure, gemini, ollama, openai)",
        "providers[1].base_url: not a URL",
        "providers[1].timeouts.conect: unknown key",
        "providers[2].name: duplicate name 'openai'",
        "strategies[0].auto[0]: unknown provider 'nowhere' in 'nowhere/model'",
        "strategies[0].auto[1]: 'openai' is not a 'provider/model' id",
        "strategies[0].fallbacks.openai/a[0]: unknown provider 'ghost' in 'ghost/b'",
        "clients[0].secret: too short (at least 16 characters)",
        "clients[0].strategy: unknown strategy 'fast'",
        "clients[1]: exactly one of 'secret' or 'secret_sha256' is required",
        "clients[2].secret: environment variable MISSING_VAR is not set",
    ]:
        assert expected in found, (expected, found)
    assert any(p.startswith("clients[2].name: invalid name") for p in found)


def test_unset_env_var_is_an_error():
    assert "providers[0].api_key: environment variable OPENAI_API_KEY is not set" in problems(
        GOOD, {"ALICE_SECRET": "lr-alice-0123456789abcdef"}
    )


def test_models_named_in_chains_must_be_listed_by_the_provider():
    text = GOOD.replace("auto: [openai/gpt-4o-mini, ollama/llama3.2]", "auto: [openai/gpt-5]")
    assert "strategies[0].auto[0]: provider 'openai' does not list model 'gpt-5'" in problems(text)


def test_duplicate_secrets_are_refused():
    text = GOOD.replace("${ALICE_SECRET}", "lr-bob-0123456789abcdef")
    assert "clients[1]: has the same secret as client 'alice'" in problems(text)


def test_top_level_must_be_a_mapping_with_required_sections():
    assert problems("[]") == ["expected a mapping"]
    assert set(problems("server: {}")) == {"providers: required", "strategies: required", "clients: required"}


def test_load_reports_yaml_errors_and_missing_files(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("providers: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        config.load(path, ENV, types=TYPES)
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "missing.yaml", ENV, types=TYPES)


def test_embedded_default():
    cfg = config.default({})
    assert [p.name for p in cfg.providers] == ["ollama"]
    assert cfg.providers[0].base_url == "http://127.0.0.1:11434/v1"
    assert cfg.strategies[0].allow == ("*",)
    secret = cfg.generated_secret.reveal()
    assert secret.startswith("lr-") and len(secret) == 46
    assert cfg.clients[0].secret_sha256 == config.hash_secret(secret)

    cfg = config.default({"OPENAI_API_KEY": "sk-x", "LOCALROUTER_SECRET": "lr-chosen-0123456789"})
    assert [p.name for p in cfg.providers] == ["ollama", "openai"]
    assert cfg.generated_secret is None
    assert cfg.clients[0].secret_sha256 == config.hash_secret("lr-chosen-0123456789")


def test_example_config_is_valid():
    from pathlib import Path

    example = Path(__file__).parents[2] / "deploy" / "localrouter.example.yaml"
    cfg = config.load(
        example,
        {
            "OPENAI_API_KEY": "sk-x",
            "ALICE_SECRET": "lr-alice-0123456789abcdef",
            "GROQ_API_KEY": "gsk-x",
            "ANTHROPIC_API_KEY": "a",
            "GEMINI_API_KEY": "g",
            "AZURE_OPENAI_API_KEY": "z",
        },
        types=TYPES,
    )
    assert cfg.clients and cfg.providers and cfg.strategies
    types = {p.name: p.type for p in cfg.providers}
    assert {"anthropic", "gemini", "ollama", "azure", "openai"} == set(types.values())
    by_name = {p.name: p for p in cfg.providers}
    assert by_name["claude"].base_url == "https://api.anthropic.com"
    assert by_name["local"].base_url == "http://127.0.0.1:11434"
    assert by_name["azure"].options.deployments == {"gpt-4o-mini": "my-gpt-4o-mini"}


@pytest.mark.parametrize(
    "provider, problem",
    [
        (
            {"name": "z", "type": "azure", "base_url": "https://r.openai.azure.com", "models": ["m"]},
            "providers[0].api_version: required for type azure (e.g. 2024-10-21)",
        ),
        (
            {"name": "z", "type": "azure", "base_url": "https://r.openai.azure.com", "api_version": "v"},
            "providers[0]: type azure needs `models` or `deployments` (Azure has no model list to discover)",
        ),
        (
            {"name": "z", "type": "azure", "api_version": "v", "models": ["m"]},
            "providers[0].base_url: required for type azure",
        ),
        ({"name": "o", "type": "openai"}, "providers[0].base_url: required for type openai"),
        (
            {"name": "o", "type": "openai", "base_url": "http://x/v1", "default_max_tokens": 5},
            "providers[0].default_max_tokens: only for type anthropic",
        ),
        (
            {"name": "a", "type": "anthropic", "deployments": {"m": "d"}},
            "providers[0].deployments: only for type azure",
        ),
    ],
)
def test_provider_type_options(provider, problem):
    data = {"providers": [provider], "strategies": [{"name": "s"}], "clients": []}
    with pytest.raises(config.ConfigError) as err:
        config.parse(data, {}, types=TYPES)
    assert problem in err.value.problems


def test_provider_types_default_their_base_url():
    data = {
        "providers": [{"name": t[:3], "type": t} for t in ("anthropic", "gemini", "ollama")],
        "strategies": [{"name": "s"}],
        "clients": [],
    }
    cfg = config.parse(data, {}, types=TYPES)
    assert [p.base_url for p in cfg.providers] == [
        "https://api.anthropic.com",
        "https://generativelanguage.googleapis.com",
        "http://127.0.0.1:11434",
    ]


@dataclass(frozen=True)
class EchoOptions(config.TypeOptions):
    voice: str = "calm"

    @classmethod
    def read(cls, r, m, path):
        voice = r.string(m["voice"], f"{path}.voice") if "voice" in m else "calm"
        return None if voice is None else cls(voice)


def test_the_reader_knows_only_the_provider_types_it_is_given():
    """A wire format passed in brings its default base_url and its own keys, checked with their paths;
    the reader itself knows none (``providers.registry.TYPES`` is what the gateway passes)."""
    echo = SimpleNamespace(name="echo", default_base_url="http://127.0.0.1:7", options=EchoOptions)
    types = {**TYPES, "echo": echo}

    def parse_providers(*providers, types=types):
        return config.parse(
            {"providers": list(providers), "strategies": [{"name": "s"}], "clients": []}, {}, types=types
        )

    cfg = parse_providers({"name": "e", "type": "echo", "voice": "loud"}, {"name": "q", "type": "echo"})
    assert [(p.base_url, p.options) for p in cfg.providers] == [
        ("http://127.0.0.1:7", EchoOptions("loud")),
        ("http://127.0.0.1:7", EchoOptions()),
    ]
    openai = {"name": "o", "base_url": "http://x/v1", "voice": "x"}
    for given, problem in (
        (types, "providers[0].voice: only for type echo"),
        (TYPES, "providers[0].voice: unknown key"),
        (
            {**types, "echo2": SimpleNamespace(name="echo2", default_base_url=None, options=EchoOptions)},
            "providers[0].voice: only for type echo, echo2",
        ),
    ):
        with pytest.raises(ConfigError) as err:
            parse_providers(openai, types=given)
        assert err.value.problems == [problem]
    with pytest.raises(ConfigError) as err:
        parse_providers({"name": "e", "type": "echo", "voice": ["a"]}, {"name": "z", "type": "zed"})
    assert err.value.problems == [
        "providers[0].voice: expected a string",
        "providers[1].type: unknown provider type 'zed' (known: anthropic, azure, echo, gemini, ollama, openai)",
    ]
