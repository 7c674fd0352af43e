"""MCP clients discover how to get a token and get one: the SDK's own OAuth client (client_credentials) against
the gateway's 401, RFC 9728 protected-resource documents (one per path of the MCP endpoint) and RFC 8414
authorization-server metadata, over real sockets."""

from __future__ import annotations

import base64
from typing import Any

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.auth import TokenStorage
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from tests.conftest import ALICE
from tests.mcp.test_inbound import gateway_config


class Memory(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


@pytest.fixture
async def gw(tmp_path, shared_tracker, start_gateway):
    data = gateway_config(tmp_path, shared_tracker)
    data["server"] = {"trusted_proxies": ["127.0.0.1"]}
    return await start_gateway(data)


BASIC, POST = "client_secret_basic", "client_secret_post"


@pytest.mark.parametrize(("path", "method"), [("/mcp", BASIC), ("/", POST), ("/v1/mcp", BASIC)])
async def test_the_sdk_oauth_client_gets_a_token_and_lists_tools(gw, path, method):
    storage = Memory()
    auth = ClientCredentialsOAuthProvider(gw.url + path, storage, "alice", ALICE, method, issuer=gw.url)
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30) as client,
        streamable_http_client(gw.url + path, http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = {t.name for t in (await session.list_tools()).tools}
    assert "tracker__shout" in tools
    assert storage.tokens is not None and storage.tokens.access_token != ALICE


@pytest.mark.parametrize("path", ["/mcp", "/", "/v1/mcp", "/v1/"])
async def test_each_path_has_its_own_document_and_the_401_names_it(gw, http, path):
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with http.post(gw.url + path, json=ping) as resp:
        assert resp.status == 401
        challenge = resp.headers["WWW-Authenticate"]
    document = "/.well-known/oauth-protected-resource" + path.rstrip("/")
    assert challenge == f'Bearer resource_metadata="{gw.url}{document}"'  # no credentials: no error (RFC 6750)
    async with http.get(gw.url + document) as resp:
        assert resp.status == 200
        assert (await resp.json())["resource"] == gw.url + path
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "mcp.example.com"}  # a trusted proxy's
    async with http.get(gw.url + document, headers=proxied) as resp:
        doc: dict[str, Any] = await resp.json()
    assert doc["resource"] == "https://mcp.example.com" + path
    assert doc["authorization_servers"] == ["https://mcp.example.com"]
    async with http.post(gw.url + path, json=ping, headers={"Authorization": "Bearer lr-at.expired", **proxied}) as r:
        assert r.status == 401
        expected = f'Bearer error="invalid_token", resource_metadata="https://mcp.example.com{document}"'
        assert r.headers["WWW-Authenticate"] == expected


async def test_the_metadata_says_what_the_token_endpoint_accepts(gw, http):
    async with http.get(f"{gw.url}/.well-known/oauth-authorization-server") as resp:
        meta = await resp.json()
    assert meta["issuer"] == gw.url and meta["token_endpoint"] == f"{gw.url}/oauth/token"
    assert meta["grant_types_supported"] == ["client_credentials"]
    async with http.get(meta["authorization_endpoint"], params={"response_type": "code", "client_id": "alice"}) as r:
        assert r.status == 400 and (await r.json())["error"] == "unsupported_response_type"
    for auth_method in meta["token_endpoint_auth_methods_supported"]:
        form = {"grant_type": "client_credentials", "client_id": "alice"}
        headers = {}
        if auth_method == "client_secret_post":
            form["client_secret"] = ALICE
        else:
            assert auth_method == "client_secret_basic"
            headers["Authorization"] = "Basic " + base64.b64encode(f"alice:{ALICE}".encode()).decode()
        async with http.post(meta["token_endpoint"], data=form, headers=headers) as resp:
            assert resp.status == 200, auth_method
    async with http.get(f"{gw.url}/.well-known/oauth-protected-resource/models") as resp:
        assert resp.status == 404  # a document only for the MCP endpoint's paths
