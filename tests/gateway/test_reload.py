"""Hot reload: SIGHUP or a changed file swaps the config; requests in flight keep theirs; bad files are refused."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import yaml

from gateway.keys import LIVE
from tests import leakcheck
from tests.conftest import ALICE, BOB, bearer, standard_config
from tests.fakes.openai_upstream import Script
from tests.procs import read_until, run, start_serve, stop

DAVE = "lr-dave-secret-0123456789abcdefgh"
leakcheck.register(DAVE)
CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
BACKUP_CHAT = {**CHAT, "model": "backup/gpt-4o-mini"}


def write(path: Path, data: dict) -> None:
    data = {"usage": {"path": str(path.parent / "usage.db")}, **data}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data))
    tmp.replace(path)  # atomic, as config management tools write files


def changed(data: dict) -> dict:
    """alice removed, bob disabled, dave added."""
    data = {**data, "clients": [c for c in data["clients"] if c["name"] != "alice"]}
    for c in data["clients"]:
        if c["name"] == "bob":
            c["enabled"] = False
    data["clients"].append({"name": "dave", "secret": DAVE, "strategy": "default"})
    return data


async def status(http: aiohttp.ClientSession, url: str, key: str, body: dict | None = None) -> int:
    if body is None:
        async with http.get(url + "/v1/models", headers=bearer(key)) as resp:
            return resp.status
    async with http.post(url + "/v1/chat/completions", headers=bearer(key), json=body) as resp:
        await resp.read()
        return resp.status


async def token(http: aiohttp.ClientSession, url: str, client_id: str, secret: str) -> str:
    async with http.post(
        url + "/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    ) as resp:
        assert resp.status == 200
        return (await resp.json())["access_token"]


async def until(check, timeout: float = 8.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.1)


async def test_sighup_reloads_clients_and_their_tokens_and_refuses_a_bad_file(tmp_path, upstreams, monkeypatch):
    monkeypatch.setenv("ALICE_SECRET", ALICE)
    data = standard_config(*upstreams)
    data["server"]["watch_config"] = False  # only the signal reloads here
    path = tmp_path / "localrouter.yaml"
    write(path, data)
    proc, url, _ = await start_serve("-c", str(path))
    try:
        async with aiohttp.ClientSession() as http:
            alice_token = await token(http, url, "alice", ALICE)
            assert await status(http, url, alice_token) == 200
            assert await status(http, url, DAVE) == 401
            write(path, changed(data))
            proc.send_signal(signal.SIGHUP)
            await read_until(proc, "config reloaded")
            assert await status(http, url, DAVE) == 200
            assert await status(http, url, ALICE) == 401
            assert await status(http, url, alice_token) == 401  # the token died with its client
            async with http.get(url + "/v1/models", headers=bearer(BOB)) as resp:
                assert resp.status == 401 and (await resp.json())["error"]["code"] == "client_disabled"

            bad = tmp_path / "bad.yaml"
            bad.write_text(
                "server: {prot: 1}\nproviders: []\nstrategies: [{name: s}]\n"
                "clients: [{name: x, secret: lr-0123456789abcdef, strategy: nope}]\n"
            )
            expected = run("check-config", "-c", str(bad)).stderr.splitlines()[1:]
            assert expected
            path.write_text(bad.read_text())
            proc.send_signal(signal.SIGHUP)
            log = await read_until(proc, expected[-1].strip())
            assert "config reload refused" in log
            for line in expected:
                assert line.strip() in log
            assert await status(http, url, DAVE) == 200  # the running config stays
    finally:
        assert await stop(proc) == 0


async def test_a_changed_file_is_picked_up_without_a_signal(tmp_path, upstreams, start_gateway, http, monkeypatch):
    monkeypatch.setenv("ALICE_SECRET", ALICE)
    data = standard_config(*upstreams)
    path = tmp_path / "localrouter.yaml"
    write(path, data)
    gw = await start_gateway(path)
    assert await status(http, gw.url, DAVE) == 401
    write(path, changed(data))
    await until(lambda: _is(status(http, gw.url, DAVE), 200))
    assert await status(http, gw.url, ALICE) == 401


async def _is(awaitable, expected) -> bool:
    return await awaitable == expected


async def test_requests_in_flight_finish_on_the_config_they_started_with(
    tmp_path, upstreams, start_gateway, http, monkeypatch
):
    monkeypatch.setenv("ALICE_SECRET", ALICE)
    primary, backup = upstreams
    data = standard_config(*upstreams)
    data["server"]["watch_config"] = False
    path = tmp_path / "localrouter.yaml"
    write(path, data)
    gw = await start_gateway(path)
    backup.default = Script(delay=0.5)
    in_flight = [asyncio.create_task(status(http, gw.url, BOB, BACKUP_CHAT)) for _ in range(20)]
    await until(lambda: _true(sum(r.path.endswith("/chat/completions") for r in backup.received) == 20))
    narrower = {
        **data,
        "strategies": [s if s["name"] != "narrow" else {"name": "narrow", "allow": []} for s in data["strategies"]],
    }
    write(path, narrower)
    assert gw.app[LIVE].reload()
    assert await status(http, gw.url, BOB, BACKUP_CHAT) == 403  # the next request: new rules
    assert await asyncio.gather(*in_flight) == [200] * 20  # those in flight: the rules they started with


async def _true(value: bool) -> bool:
    return value


async def test_reload_under_load_has_zero_errors(tmp_path, upstreams, start_gateway, http, monkeypatch):
    monkeypatch.setenv("ALICE_SECRET", ALICE)
    primary, _ = upstreams
    primary.default = Script(delay=0.05)
    data = standard_config(*upstreams)
    data["server"]["watch_config"] = False
    path = tmp_path / "localrouter.yaml"
    write(path, data)
    gw = await start_gateway(path)
    stop_load = asyncio.Event()
    results: list[int] = []

    async def client(stream: bool) -> None:
        while not stop_load.is_set():
            results.append(await status(http, gw.url, ALICE, {**CHAT, "stream": stream}))

    load = [asyncio.create_task(client(i % 2 == 1)) for i in range(16)]
    for i in range(10):  # ten reloads, each a different config (a client comes and goes)
        await asyncio.sleep(0.15)
        version = {
            **data,
            "clients": [
                *data["clients"],
                {"name": f"temp{i}", "secret": f"lr-temp-{i}-0123456789abcdef", "strategy": "default"},
            ],
        }
        write(path, version)
        assert gw.app[LIVE].reload()
    stop_load.set()
    await asyncio.gather(*load)
    assert len(results) > 100
    assert set(results) == {200}
    assert await status(http, gw.url, "lr-temp-9-0123456789abcdef") == 200
    assert await status(http, gw.url, "lr-temp-8-0123456789abcdef") == 401
