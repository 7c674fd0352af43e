"""What a newcomer meets first: a run with nothing reachable, a model id without its provider, a port
in use, a short secret, and what `serve`, `check-config` and `usage` tell them."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest

from gateway.observability.usage import SQLiteStore, UsageRecord
from tests.conftest import ALICE, BOB, bearer, standard_config
from tests.procs import ROOT, run, start_serve, stop, write_config


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_dead_provider(data: dict) -> dict:
    """``data`` plus a provider whose models must be discovered from a port where nothing listens."""
    dead = {"name": "dead", "base_url": f"http://127.0.0.1:{closed_port()}/v1", "api_key": "sk-dead-provider-key"}
    return {**data, "providers": [*data["providers"], dead]}


async def health_until(http, url: str, status: str, timeout: float = 10.0) -> dict:
    """The /health document once its status is ``status`` (discovery runs in the background)."""
    async with asyncio.timeout(timeout):
        while True:
            async with http.get(url) as resp:
                assert resp.status == 200
                doc = await resp.json()
            if doc["status"] == status:
                return doc
            await asyncio.sleep(0.05)


async def test_health_is_degraded_while_a_provider_cannot_list_its_models(upstreams, start_gateway, http):
    gw = await start_gateway(with_dead_provider(standard_config(*upstreams)))
    doc = await health_until(http, gw.url + "/health", "degraded")
    assert doc["providers_unreachable"] == [{"provider": "dead", "error": "cannot connect (connection refused)"}]
    assert doc["state"]["ok"] is True  # the state backend is fine: the provider is why
    detail = await health_until(http, gw.url + "/health?detail=1", "degraded")
    assert detail["providers_unreachable"] == doc["providers_unreachable"]
    assert "sk-dead-provider-key" not in json.dumps(detail)


async def test_health_is_ok_when_every_provider_answers(gw, http):
    await asyncio.sleep(0.2)  # discovery of `backup` has had its chance to fail
    async with http.get(gw.url + "/health") as resp:
        doc = await resp.json()
    assert doc["status"] == "ok" and doc["providers_unreachable"] == []


async def chat_error(http, gw, model: str, key: str = ALICE) -> str:
    async with http.post(
        gw.url + "/v1/chat/completions",
        headers=bearer(key),
        json={"model": model, "messages": [{"role": "user", "content": "x"}]},
    ) as resp:
        assert resp.status == 404
        err = (await resp.json())["error"]
    assert err["code"] == "model_not_found" and err["param"] == "model"
    return err["message"]


async def test_a_model_without_its_provider_gets_a_404_naming_the_ids_it_may_mean(gw, http):
    message = await chat_error(http, gw, "gpt-4o-mini")
    assert "model ids are `provider/model`" in message
    assert "`openai/gpt-4o-mini`" in message and "`backup/gpt-4o-mini`" in message
    assert "`openai/gpt-4o-mini`" in await chat_error(http, gw, "openai/gpt-4o-mni")
    unknown = await chat_error(http, gw, "nope/text-embedding-3-small")
    assert "no provider `nope` is configured" in unknown and "`openai/text-embedding-3-small`" in unknown


async def test_suggestions_name_only_models_the_client_may_use(gw, http):
    message = await chat_error(http, gw, "gpt-4o-mini", key=BOB)  # bob may use backup/gpt-4o-mini only
    assert "`backup/gpt-4o-mini`" in message and "openai/" not in message
    nothing = await chat_error(http, gw, "x" * 5000)
    assert "GET /v1/models" in nothing


async def test_serve_says_where_its_config_usage_records_and_providers_are(tmp_path, upstreams):
    path = write_config(tmp_path, with_dead_provider(standard_config(*upstreams)))
    cwd = tmp_path / "run"
    cwd.mkdir()
    proc, _, lines = await start_serve("-c", str(path), cwd=cwd, env={"ALICE_SECRET": ALICE})
    try:
        text = "".join(lines)
        assert f"config: {path}\n" in text
        assert f"usage records: {cwd / 'localrouter-usage.db'}\n" in text
        assert f"provider openai (openai, {upstreams[0].base_url}): 2 models (configured)\n" in text
        assert f"provider backup (openai, {upstreams[1].base_url}): 2 models discovered\n" in text
        dead = next(line for line in lines if line.startswith("provider dead "))
        assert "model discovery failed: cannot connect (connection refused)" in dead
        assert "sk-" not in text
    finally:
        assert await stop(proc) == 0


async def test_serve_on_the_embedded_default_says_so(tmp_path):
    proc, _, lines = await start_serve(
        cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "LOCALROUTER_SECRET": "", "OPENAI_API_KEY": ""}
    )
    try:
        text = "".join(lines)
        assert "config: the embedded default" in text
        assert f"usage records: {tmp_path / 'localrouter-usage.db'}\n" in text
        assert "provider ollama (openai, http://127.0.0.1:11434/v1): " in text
    finally:
        assert await stop(proc) == 0


def test_a_short_localrouter_secret_is_refused(tmp_path):
    env = {"PYTHONPATH": str(ROOT), "LOCALROUTER_SECRET": "short"}
    expected = "environment variable LOCALROUTER_SECRET: too short (at least 16 characters)"
    for command in ("check-config", "serve"):
        out = (
            run(command, "--port", "0", cwd=tmp_path, env=env)
            if command == "serve"
            else run(command, cwd=tmp_path, env=env)
        )
        assert out.returncode == 2 and expected in out.stderr, out.stderr


@pytest.mark.parametrize("workers", [[], ["--workers", "2", "--allow-per-process-limits"]])
def test_a_port_in_use_is_one_line_and_exit_2(tmp_path, workers):
    path = write_config(
        tmp_path,
        {
            "providers": [{"name": "p", "base_url": f"http://127.0.0.1:{closed_port()}/v1", "models": ["m"]}],
            "strategies": [{"name": "s", "allow": ["*"]}],
            "clients": [{"name": "c", "secret": "lr-0123456789abcdef", "strategy": "s"}],
        },
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run("serve", "-c", str(path), "--port", str(port), *workers)
    assert out.returncode == 2
    assert "Traceback" not in out.stdout + out.stderr
    assert out.stderr.splitlines()[-1] == f"error: cannot listen on 127.0.0.1:{port}: address already in use"


def test_check_config_lists_what_each_provider_type_can_serve(tmp_path):
    def provider(name: str, ptype: str) -> dict:
        return {"name": name, "type": ptype, "base_url": "http://127.0.0.1:1", "api_key": "k", "models": ["m"]}

    path = write_config(
        tmp_path,
        {
            "providers": [
                provider("oa", "openai"),
                provider("an", "anthropic"),
                provider("ge", "gemini"),
                provider("ol", "ollama"),
                {**provider("emb", "openai"), "endpoints": ["embeddings"]},
            ],
            "strategies": [{"name": "s", "allow": ["*"]}],
            "clients": [{"name": "c", "secret": "lr-0123456789abcdef", "strategy": "s"}],
        },
    )
    out = run("check-config", "-c", str(path))
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines() if "http://127.0.0.1:1" in line}
    assert rows["oa"].endswith("[chat, completions, embeddings]")
    assert rows["an"].endswith("[chat]")
    assert rows["ge"].endswith("[chat, embeddings]") and rows["ol"].endswith("[chat, embeddings]")
    assert rows["emb"].endswith("[embeddings]")
    assert len({line.index("http://") for line in rows.values()}) == 1  # one column, whatever the type


def seed_usage(path: Path) -> None:
    store = SQLiteStore(str(path))
    now = time.time()
    store.write(
        [
            UsageRecord(
                "req_1",
                now,
                "alice",
                "chat",
                "openai/gpt-4o-mini",
                "openai/gpt-4o-mini",
                "openai",
                False,
                200,
                10,
                5,
                15,
                None,
                12.0,
                None,
                1,
            ),
            UsageRecord("req_2", now, "alice", "chat", "llama3.2", None, None, False, 404, 0, 0, 0, None, 1.0, None, 0),
        ]
    )
    store.close()


def test_usage_names_failed_requests_without_a_model(tmp_path):
    seed_usage(tmp_path / "usage.db")
    out = run("usage", "--db", str(tmp_path / "usage.db"), "--by", "model")
    assert out.returncode == 0, out.stderr
    rows = {line.split("  ")[0].strip(): line for line in out.stdout.splitlines()[2:]}
    assert "(no model)" in rows and "None" not in out.stdout
    by_provider = run("usage", "--db", str(tmp_path / "usage.db"), "--by", "provider").stdout
    assert "(no provider)" in by_provider and "None" not in by_provider


def test_usage_without_a_file_says_which_one_it_read(tmp_path):
    seed_usage(tmp_path / "localrouter-usage.db")
    out = run("usage", cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "LOCALROUTER_SECRET": ""})
    assert out.returncode == 0, out.stderr
    assert f"usage records from {tmp_path / 'localrouter-usage.db'}" in out.stderr
    assert "the embedded default" in out.stderr
