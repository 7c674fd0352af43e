"""Security basics: headers on every answer, CORS, the Host check, the internal-test token, new-secret."""

from __future__ import annotations

import hashlib
import re
import socket

import pytest

from providers.registry import TYPES
from tests.conftest import ALICE, BOB, bearer, standard_config
from tests.procs import run, start_serve, stop, write_config

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
ORIGIN = "https://ui.example.com"


def local_non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.mark.parametrize(
    "method, path, kwargs, expected",
    [
        ("GET", "/health", {}, 200),
        ("GET", "/v1/models", {"headers": bearer()}, 200),
        ("GET", "/v1/models", {}, 401),
        ("GET", "/v1/nope", {}, 404),
        ("POST", "/v1/chat/completions", {"headers": bearer(), "json": {**CHAT, "stream": True}}, 200),
    ],
)
async def test_every_answer_has_nosniff_and_no_store(gw, http, method, path, kwargs, expected):
    async with http.request(method, gw.url + path, **kwargs) as resp:
        assert resp.status == expected
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "no-store" in resp.headers["Cache-Control"]
        assert "Access-Control-Allow-Origin" not in resp.headers
        await resp.read()


async def test_cors_is_off_by_default(gw, http):
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    async with http.options(gw.url + "/v1/chat/completions", headers=headers) as resp:
        assert resp.status == 405
        assert "Access-Control-Allow-Origin" not in resp.headers
        assert (await resp.json())["error"]["type"] == "invalid_request_error"


async def test_cors_for_configured_origins(upstreams, start_gateway, http):
    gw = await start_gateway(
        standard_config(*upstreams, server={"host": "127.0.0.1", "port": 0, "cors_origins": [ORIGIN]})
    )
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with http.options(gw.url + "/v1/chat/completions", headers=preflight) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        assert "authorization" in resp.headers["Access-Control-Allow-Headers"].lower()
    async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers={**bearer(), "Origin": ORIGIN}) as resp:
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "Retry-After" in resp.headers["Access-Control-Expose-Headers"]
    async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 401 and resp.headers["Access-Control-Allow-Origin"] == ORIGIN  # errors readable too
    evil = {**preflight, "Origin": "https://evil.example"}
    async with http.options(gw.url + "/v1/chat/completions", headers=evil) as resp:
        assert resp.status == 405 and "Access-Control-Allow-Origin" not in resp.headers
    async with http.post(
        gw.url + "/v1/chat/completions", json=CHAT, headers={**bearer(), "Origin": "https://evil.example"}
    ) as resp:
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_allowed_hosts_refuses_other_host_headers(upstreams, start_gateway, http):
    gw = await start_gateway(
        standard_config(
            *upstreams, server={"host": "127.0.0.1", "port": 0, "allowed_hosts": ["localhost", "127.0.0.1"]}
        )
    )
    port = gw.url.rsplit(":", 1)[1]
    async with http.get(gw.url + "/v1/models", headers=bearer()) as resp:
        assert resp.status == 200
    async with http.get(gw.url + "/v1/models", headers={**bearer(), "Host": f"localhost:{port}"}) as resp:
        assert resp.status == 200
    async with http.get(gw.url + "/v1/models", headers={**bearer(), "Host": "attacker.example"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "host_not_allowed"


async def test_internal_test_token_is_off_by_default(gw, http):
    async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer("internal-test")) as resp:
        assert resp.status == 401


async def test_internal_test_token_when_enabled_is_loopback_only(upstreams, start_gateway, http):
    server = {"host": "127.0.0.1", "port": 0, "internal_test_token": True}
    gw = await start_gateway(standard_config(*upstreams, server=server))
    # it bypasses the client restrictions: bob's strategy may not use this model, internal-test may
    async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer(BOB)) as resp:
        assert resp.status == 403
    async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer("internal-test")) as resp:
        assert resp.status == 200
    async with http.get(gw.url + "/v1/models", headers=bearer("internal-test")) as resp:
        ids = {m["id"] for m in (await resp.json())["data"]}
        assert {"openai/gpt-4o-mini", "backup/gpt-4o-mini"} <= ids
    # a reverse proxy on this host forwards for someone else: not loopback
    async with http.post(
        gw.url + "/v1/chat/completions",
        json=CHAT,
        headers={**bearer("internal-test"), "X-Forwarded-For": "203.0.113.9"},
    ) as resp:
        assert resp.status == 401


async def test_internal_test_token_from_another_address_is_refused(upstreams, start_gateway, http):
    address = local_non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to call from")
    server = {"host": "127.0.0.1", "port": 0, "internal_test_token": True}
    gw = await start_gateway(standard_config(*upstreams, server=server), host=address)
    async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer("internal-test")) as resp:
        assert resp.status == 401
    async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer(ALICE)) as resp:
        assert resp.status == 200


async def test_serve_warns_when_internal_test_is_on(tmp_path, upstreams):
    data = standard_config(*upstreams)
    data["server"]["internal_test_token"] = True
    proc, _, lines = await start_serve("-c", str(write_config(tmp_path, data)), env={"ALICE_SECRET": ALICE})
    try:
        assert any("WARNING" in line and "internal_test_token" in line for line in lines)
    finally:
        assert await stop(proc) == 0
    data["server"]["internal_test_token"] = False
    proc, _, lines = await start_serve("-c", str(write_config(tmp_path, data)), env={"ALICE_SECRET": ALICE})
    try:
        assert not any("internal_test_token" in line for line in lines)
    finally:
        assert await stop(proc) == 0


async def test_new_secret_prints_a_secret_and_the_line_for_the_config(tmp_path, upstreams, start_gateway, http):
    out = run("new-secret")
    assert out.returncode == 0
    secret = out.stdout.splitlines()[0]
    assert re.fullmatch(r"lr-[A-Za-z0-9_-]{43}", secret)
    line = next(line for line in out.stdout.splitlines() if line.startswith("secret_sha256: "))
    digest = line.split(": ", 1)[1]
    assert digest == hashlib.sha256(secret.encode()).hexdigest()
    assert run("new-secret").stdout.splitlines()[0] != secret
    # the config then holds no secret at all, and the client gets in
    data = standard_config(*upstreams)
    data["clients"].append({"name": "erin", "secret_sha256": digest, "strategy": "default"})
    gw = await start_gateway(data)
    async with http.get(gw.url + "/v1/models", headers=bearer(secret)) as resp:
        assert resp.status == 200


def test_no_secret_in_the_reprs_of_the_config(upstreams):
    from gateway import config as gwconfig
    from gateway.auth.clients import ClientRegistry
    from gateway.auth.tokens import TokenSigner
    from gateway.routing.router import Policy

    key = "a-signing-key-that-is-long-enough-0123456789"
    cfg = gwconfig.parse(standard_config(*upstreams, auth={"signing_key": key}), {"ALICE_SECRET": ALICE}, types=TYPES)
    registry = ClientRegistry(cfg, {s.name: Policy.compile(s) for s in cfg.strategies}, TokenSigner(key.encode(), 60))
    shown = repr(cfg) + str(cfg) + repr(registry.signer) + repr(registry.identify(ALICE))
    for secret in (ALICE, BOB, key, "sk-upstream-primary-key", gwconfig.hash_secret(ALICE)):
        assert secret not in shown


async def test_thousands_of_clients_each_found_by_their_own_secret(upstreams, start_gateway, http):
    data = standard_config(*upstreams)
    secrets = [f"lr-many-{i:05d}-0123456789abcdef" for i in range(5000)]
    data["clients"] += [
        {
            "name": f"user{i}",
            "secret_sha256": hashlib.sha256(s.encode()).hexdigest(),
            "strategy": "narrow" if i % 2 else "default",
        }
        for i, s in enumerate(secrets)
    ]
    gw = await start_gateway(data)
    for i in (0, 1, 2500, 4999):
        async with http.post(gw.url + "/v1/chat/completions", json=CHAT, headers=bearer(secrets[i])) as resp:
            assert resp.status == (403 if i % 2 else 200)  # each secret maps to its own client's strategy
    async with http.get(gw.url + "/health") as resp:
        assert (await resp.json())["clients"] == 5003
