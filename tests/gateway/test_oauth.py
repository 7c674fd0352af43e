"""POST /oauth/token: client credentials in every accepted form, RFC 6749 errors, and the token in use."""

from __future__ import annotations

import asyncio
import base64

import openai
import pytest

from tests import leakcheck
from tests.conftest import ALICE, BOB, CAROL, bearer, standard_config

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
KEY_A = "signing-key-a-0123456789abcdef0123456789"
KEY_B = "signing-key-b-0123456789abcdef0123456789"
leakcheck.register(KEY_A, KEY_B)


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def get_token(http, url: str, how: str = "form", client_id: str = "alice", secret: str = ALICE):
    if how == "form":
        kwargs = {"data": {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}}
    elif how == "json":
        kwargs = {"json": {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}}
    else:
        kwargs = {"data": {"grant_type": "client_credentials"}, "headers": basic(client_id, secret)}
    async with http.post(url + "/oauth/token", **kwargs) as resp:
        return resp.status, dict(resp.headers), await resp.json()


@pytest.mark.parametrize("how", ["form", "json", "basic"])
async def test_token_in_every_form_works_with_the_sdk(gw, http, how):
    status, headers, doc = await get_token(http, gw.url, how)
    assert status == 200, doc
    assert doc["token_type"] == "Bearer" and doc["expires_in"] == 3600
    assert headers["Cache-Control"] == "no-store"
    token = doc["access_token"]
    assert ALICE not in token
    async with gw.sdk(key=token) as sdk:
        answer = await sdk.chat.completions.create(**CHAT)
        assert answer.model == "openai/gpt-4o-mini"
        assert {m.id for m in (await sdk.models.list()).data} >= {"openai/gpt-4o-mini"}
    # the token carries the client's strategy: bob's token gets bob's narrow rules
    _, _, bob = await get_token(http, gw.url, how, "bob", BOB)
    async with gw.sdk(key=bob["access_token"]) as sdk:
        with pytest.raises(openai.PermissionDeniedError):
            await sdk.chat.completions.create(**CHAT)


async def test_the_v1_prefix_serves_the_token_endpoint_too(gw, http):
    status, _, doc = await get_token(http, gw.url + "/v1")
    assert status == 200 and doc["access_token"].startswith("lrat.")


@pytest.mark.parametrize(
    "data, status, error",
    [
        ({"client_id": "alice", "client_secret": ALICE}, 400, "invalid_request"),
        ({"grant_type": "password", "client_id": "alice", "client_secret": ALICE}, 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "client_id": "alice"}, 400, "invalid_request"),
        (
            {"grant_type": "client_credentials", "client_id": "alice", "client_secret": "lr-wrong-0123456789abc"},
            401,
            "invalid_client",
        ),
        ({"grant_type": "client_credentials", "client_id": "nobody", "client_secret": ALICE}, 401, "invalid_client"),
        ({"grant_type": "client_credentials", "client_id": "carol", "client_secret": CAROL}, 401, "invalid_client"),
    ],
)
async def test_errors_have_the_rfc_6749_shape(gw, http, data, status, error):
    async with http.post(gw.url + "/oauth/token", data=data) as resp:
        assert resp.status == status
        doc = await resp.json()
    assert doc["error"] == error and isinstance(doc["error_description"], str)
    assert set(doc) == {"error", "error_description"}
    assert ALICE not in str(doc) and CAROL not in str(doc)


async def test_bad_bodies_and_basic_failures(gw, http):
    async with http.post(
        gw.url + "/oauth/token", data=b"grant_type=client_credentials", headers={"Content-Type": "text/plain"}
    ) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "invalid_request"
    async with http.post(
        gw.url + "/oauth/token", data=b"{not json", headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "invalid_request"
    async with http.post(
        gw.url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic("alice", "lr-wrong-secret-0123456789"),
    ) as resp:
        assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Basic")
    async with http.post(
        gw.url + "/oauth/token",
        headers={"Authorization": "Basic !!!notbase64"},
        data={"grant_type": "client_credentials"},
    ) as resp:
        assert resp.status == 400
    # credentials both ways at once are refused (RFC 6749 2.3)
    async with http.post(
        gw.url + "/oauth/token",
        headers=basic("alice", ALICE),
        data={"grant_type": "client_credentials", "client_secret": ALICE},
    ) as resp:
        assert resp.status == 400


async def test_repeated_failures_for_a_client_id_are_throttled(gw, http):
    for _ in range(5):
        status, _, _ = await get_token(http, gw.url, secret="lr-wrong-secret-0123456789")
        assert status == 401
    status, headers, doc = await get_token(http, gw.url)  # even the right secret waits now
    assert status == 429 and doc["error"] == "slow_down"
    assert 50 <= int(headers["Retry-After"]) <= 60
    status, _, _ = await get_token(http, gw.url, client_id="bob", secret=BOB)  # other clients are not affected
    assert status == 200
    async with http.get(gw.url + "/v1/models", headers=bearer(ALICE)) as resp:  # nor is the secret itself
        assert resp.status == 200


async def test_token_expires(upstreams, start_gateway, http):
    gw = await start_gateway(standard_config(*upstreams, auth={"token_ttl": 1}))
    _, _, doc = await get_token(http, gw.url)
    assert doc["expires_in"] == 1
    async with http.get(gw.url + "/v1/models", headers=bearer(doc["access_token"])) as resp:
        assert resp.status == 200
    await asyncio.sleep(2.1)
    async with http.get(gw.url + "/v1/models", headers=bearer(doc["access_token"])) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "invalid_api_key"


async def test_replicas_sharing_a_key_accept_each_others_tokens_and_a_new_key_kills_them(
    upstreams, start_gateway, http
):
    one = await start_gateway(standard_config(*upstreams, auth={"signing_key": KEY_A}))
    two = await start_gateway(standard_config(*upstreams, auth={"signing_key": KEY_A}))
    other = await start_gateway(standard_config(*upstreams, auth={"signing_key": KEY_B}))
    _, _, doc = await get_token(http, one.url)
    for replica, expected in ((one, 200), (two, 200), (other, 401)):
        async with http.get(replica.url + "/v1/models", headers=bearer(doc["access_token"])) as resp:
            assert resp.status == expected


async def test_tampered_tokens_are_refused(gw, http):
    _, _, doc = await get_token(http, gw.url)
    token = doc["access_token"]
    prefix, payload, mac = token.split(".")
    forged_payload = (
        base64.urlsafe_b64encode(base64.urlsafe_b64decode(payload + "==").replace(b"alice", b"bob__"))
        .rstrip(b"=")
        .decode()
    )
    for bad in (
        f"{prefix}.{forged_payload}.{mac}",
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        f"{prefix}.{payload}",
        "lrat.",
        "lrat.x.y",
    ):
        async with http.get(gw.url + "/v1/models", headers=bearer(bad)) as resp:
            assert resp.status == 401, bad


async def test_a_token_has_exactly_one_accepted_spelling(gw, http):
    _, _, doc = await get_token(http, gw.url)
    token = doc["access_token"]
    prefix, payload, mac = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # the MAC's last character with its unused low bits set: lenient decoding gives the same bytes
    sibling = alphabet[alphabet.index(mac[-1]) | 1]
    assert base64.urlsafe_b64decode(mac[:-1] + sibling + "=") == base64.urlsafe_b64decode(mac + "=")
    spellings = [
        f"{prefix}.{payload[:3]}!!{payload[3:]}.{mac}",
        f"{prefix}.{payload}.{mac[:5]}$${mac[5:]}",
        token + "=",
        f"{prefix}.{payload}=.{mac}",
        f"{prefix}.{payload}.{mac}==",
        token + ".",
        f"{prefix}.{payload}.{mac[:-1]}{sibling}",
        f"{prefix}.{payload}.{mac[:4]}+{mac[5:]}",
    ]
    async with http.get(gw.url + "/v1/models", headers=bearer(token)) as resp:
        assert resp.status == 200
    for bad in spellings:
        async with http.get(gw.url + "/v1/models", headers=bearer(bad)) as resp:
            assert resp.status == 401, bad


async def test_signing_key_can_come_from_the_environment(upstreams, start_gateway, http):
    env = {"ALICE_SECRET": ALICE, "LOCALROUTER_SIGNING_KEY": KEY_A}
    one = await start_gateway(standard_config(*upstreams), env=env)
    two = await start_gateway(standard_config(*upstreams), env=env)
    _, _, doc = await get_token(http, one.url)
    async with http.get(two.url + "/v1/models", headers=bearer(doc["access_token"])) as resp:
        assert resp.status == 200
