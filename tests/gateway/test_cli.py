"""The `localrouter` command, run as a real process."""

from __future__ import annotations

import re

import aiohttp
import pytest

from tests.conftest import ALICE, standard_config
from tests.procs import ROOT, run, start_serve, stop, write_config


def test_check_config_summarises_a_good_file_without_secrets():
    env = {
        "OPENAI_API_KEY": "sk-must-not-print",
        "ALICE_SECRET": "lr-alice-must-not-print",
        "GROQ_API_KEY": "g",
        "ANTHROPIC_API_KEY": "sk-ant-must-not-print",
        "GEMINI_API_KEY": "g",
        "AZURE_OPENAI_API_KEY": "z",
    }
    out = run("check-config", "-c", "deploy/localrouter.example.yaml", env=env)
    assert out.returncode == 0, out.stderr
    assert "config OK" in out.stdout
    for word in ("openai", "groq", "ollama", "alice", "ci-bot", "local-only", "(disabled)"):
        assert word in out.stdout
    assert "must-not-print" not in out.stdout + out.stderr


def test_check_config_and_serve_list_every_problem_and_exit_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "server: {prot: 1}\n"
        "providers: [{name: a, base_url: http://127.0.0.1:1/v1}, {name: b, base_url: nope}]\n"
        "strategies: [{name: default, allow: ['*']}]\n"
        "clients: [{name: c, secret: lr-0123456789abcdef, strategy: fast}]\n"
    )
    expected = [
        "server.prot: unknown key",
        "providers[1].base_url: not a URL",
        "clients[0].strategy: unknown strategy 'fast'",
    ]
    check = run("check-config", "-c", str(path))
    serve = run("serve", "-c", str(path))
    for out in (check, serve):
        assert out.returncode == 2
        for line in expected:
            assert line in out.stderr
    assert check.stderr == serve.stderr


def test_version():
    out = run("--version")
    assert out.returncode == 0 and re.match(r"localrouter \d+\.\d+\.\d+", out.stdout)


async def test_serve_a_config_file_end_to_end(tmp_path, upstreams):
    path = write_config(tmp_path, standard_config(*upstreams))
    proc, url, _ = await start_serve("-c", str(path), env={"ALICE_SECRET": ALICE})
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/health") as resp:
                assert resp.status == 200
            async with http.post(
                url + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {ALICE}"},
                json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
            ) as resp:
                assert resp.status == 200
                assert (await resp.json())["model"] == "openai/gpt-4o-mini"
    finally:
        assert await stop(proc) == 0


async def test_serve_reads_localrouter_yaml_from_the_working_directory(tmp_path, upstreams):
    write_config(tmp_path, standard_config(*upstreams))
    proc, url, _ = await start_serve(cwd=tmp_path, env={"ALICE_SECRET": ALICE, "PYTHONPATH": str(ROOT)})
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/v1/models", headers={"Authorization": f"Bearer {ALICE}"}) as resp:
                assert resp.status == 200
    finally:
        assert await stop(proc) == 0


@pytest.mark.parametrize("chosen", [None, "lr-chosen-secret-0123456789"])
async def test_serve_on_embedded_defaults(tmp_path, chosen):
    env = {"PYTHONPATH": str(ROOT), "LOCALROUTER_SECRET": chosen or "", "OPENAI_API_KEY": ""}
    proc, url, lines = await start_serve(cwd=tmp_path, env=env)
    try:
        printed = re.findall(r"lr-[A-Za-z0-9_-]{43}", "".join(lines))
        if chosen:
            assert printed == [] and chosen not in "".join(lines)
            secret = chosen
        else:
            assert len(printed) == 1
            secret = printed[0]
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/health") as resp:
                assert (await resp.json())["providers"] == 1
            async with http.get(url + "/models", headers={"Authorization": f"Bearer {secret}"}) as resp:
                assert resp.status == 200
            async with http.get(url + "/models", headers={"Authorization": "Bearer lr-wrong-0123456789abcdef"}) as resp:
                assert resp.status == 401
    finally:
        assert await stop(proc) == 0


async def test_usage_shows_the_answers_from_the_cache_and_what_they_saved(tmp_path, upstreams, start_gateway, http):
    """Three times the same request through a strategy with a cache: one miss, two hits; `localrouter usage`
    shows the hits and the cost they saved, as JSON and in the table with its totals."""
    import json

    from gateway.keys import OBSERVER
    from tests.cache.test_response_cache import CHAT, COST, cached_config
    from tests.conftest import bearer

    db = tmp_path / "usage.db"
    gw = await start_gateway({**cached_config(upstreams), "usage": {"path": str(db)}})
    for _ in range(3):
        async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer()) as resp:
            assert resp.status == 200
    writer = gw.app[OBSERVER].usage
    assert writer is not None
    await writer.flush(everything=True)
    out = run("usage", "--db", str(db), "--since", "1h", "--json")
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert (row["client"], row["requests"], row["cached_requests"]) == ("alice", 3, 2)
    assert row["cost_usd"] == pytest.approx(COST) and row["saved_usd"] == pytest.approx(2 * COST)
    table = run("usage", "--db", str(db), "--since", "1h").stdout.splitlines()
    assert table[0].split()[-2:] == ["cached", "saved_usd"]
    assert table[2].split()[-2:] == table[-1].split()[-2:] == ["2", f"{2 * COST:.6f}"]
