"""The route table is what every layer reads: who needs a secret, which label a request gets, which
requests are rate limited and have their body read, and what the OpenAPI document lists."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from gateway.api.routes import ROUTES
from tests.conftest import ALICE, bearer, standard_config

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
NO_KEY = "You didn't provide an API key"
ORIGIN = "https://app.example.com"
PUBLIC = {"/health", "/openapi.json", "/metrics", "/oauth/token", "/admin/api/login", "/admin/api/logout"}
PUBLIC |= {
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
    "/.well-known/oauth-protected-resource/v1/mcp",
    "/.well-known/oauth-protected-resource/v1",
    "/.well-known/oauth-authorization-server",
    "/oauth/authorize",
}  # as the README's table of endpoints says


def _documented(path: str) -> str:
    """As OpenAPI names a path: a variable without aiohttp's pattern (``{id:.+}`` -> ``{id}``)."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)


def _url_path(path: str) -> str:
    path = path.replace("{name}", "bob").replace("{target:.+}", "openai/gpt-4o-mini")
    return path.replace("{id:.+}", "openai/gpt-4o-mini").replace("{id}", "resp_1")


async def _requests_by_endpoint(http, gw) -> dict[str, float]:
    async with http.get(gw.url + "/metrics") as resp:
        text = await resp.text()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "localrouter_requests_total":
                found[s.labels["endpoint"]] = found.get(s.labels["endpoint"], 0) + s.value
    return found


async def test_every_route_asks_for_a_secret_and_is_labelled_as_its_entry_says(gw, http):
    assert {r.path for r in ROUTES if r.public} == PUBLIC
    expected: dict[str, int] = {}
    for route in ROUTES:
        for prefix in ("", "/v1"):
            async with http.request(route.method, gw.url + prefix + _url_path(route.path)) as resp:
                body = await resp.text()
            asks = not (route.public or route.anonymous)  # anonymous: answers without a key too (GET session)
            assert resp.status < 500 and (resp.status == 401 and NO_KEY in body) is asks, (route.path, body)
            expected[route.endpoint] = expected.get(route.endpoint, 0) + 1
    found = await _requests_by_endpoint(http, gw)  # /metrics counts itself once it has answered
    assert found == expected


async def test_a_request_that_matched_no_route_is_labelled_other(upstreams, start_gateway, http):
    gw = await start_gateway(
        standard_config(*upstreams, server={"host": "127.0.0.1", "port": 0, "cors_origins": [ORIGIN]})
    )
    async with http.get(gw.url + "/v1/nope", headers=bearer()) as resp:
        assert resp.status == 404
    async with http.get(gw.url + "/v1/chat/completions", headers=bearer()) as resp:
        assert resp.status == 405
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    async with http.options(gw.url + "/v1/chat/completions", headers=preflight) as resp:
        assert resp.status == 204
    assert await _requests_by_endpoint(http, gw) == {"other": 3}  # none of them served, or was timed as, chat


async def test_a_malformed_body_is_counted_against_the_rate_limit_before_it_is_refused(upstreams, start_gateway, http):
    data = standard_config(*upstreams)
    data["strategies"][0]["rate_limits"] = [{"requests": 2, "per": "minute"}]
    gw = await start_gateway(data)
    url = gw.url + "/v1/chat/completions"
    headers = {**bearer(ALICE), "Content-Type": "application/json"}
    async with http.post(url, data=b"{not json", headers=headers) as resp:
        assert resp.status == 400
        assert resp.headers["x-ratelimit-remaining-requests"] == "1"
    async with http.post(url, json=CHAT, headers=bearer(ALICE)) as resp:
        assert resp.status == 200
        assert resp.headers["x-ratelimit-remaining-requests"] == "0"
    async with http.post(url, data=b"{not json", headers=headers) as resp:
        assert resp.status == 429  # refused before its body is read


async def test_the_openapi_document_lists_the_table(gw, http):
    async with http.get(gw.url + "/openapi.json") as resp:
        paths = (await resp.json())["paths"]
    documented = {(method.upper(), path): op for path, ops in paths.items() for method, op in ops.items()}
    assert set(documented) == {(r.method, _documented(r.path)) for r in ROUTES}
    for route in ROUTES:
        operation = documented[(route.method, _documented(route.path))]
        assert bool(operation.get("security")) is not route.public, route.path
