"""The operator page in a real browser (Debian's chromium, driven by Playwright): an admin logs in, real
requests go through the gateway to fake upstreams, and every view shows them with the admin API's numbers;
suspend from the page refuses that client over HTTP until resumed; no console error, no CSP violation,
nothing fetched from another origin, no horizontal scroll at a laptop's or a desktop's width. The page's
own files and headers are checked over plain HTTP."""

from __future__ import annotations

import asyncio
import configparser
import csv
import fnmatch
import io
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Page
from yarl import URL

from tests import leakcheck
from tests.conftest import ALICE, BOB, CAROL, bearer, standard_config
from tests.fakes.openai_upstream import Script
from tests.ui.browser import Watched, chromium, watched_page

ADMIN = "lr-admin-secret-0123456789abcdefgh"
leakcheck.register(ADMIN)
TOKENS = 12  # the fake upstream's usage: 7 prompt + 5 completion tokens per answer
VIEWS = ("overview", "providers", "clients", "usage", "requests", "approvals", "audit")
WIDTHS = (1024, 1280, 1440)
ZOOMED = (1280, 1440)  # widths also seen at 200 % zoom


def config(primary, backup) -> dict[str, Any]:
    data = standard_config(primary, backup)
    data["providers"][0]["cooldown"] = {"failures": 1, "seconds": 300}  # one failure opens the breaker
    data["strategies"][1]["rate_limits"] = [{"requests": 60, "per": "minute"}]
    data["clients"].append({"name": "ops", "secret": ADMIN, "strategy": "default", "admin": True})
    return data


async def chat(http: aiohttp.ClientSession, url: str, key: str, model: str, stream: bool = False) -> tuple[int, str]:
    """One chat completion over HTTP: its status and request id (the id of its usage record)."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    async with http.post(url + "/v1/chat/completions", json=body, headers=bearer(key)) as resp:
        await resp.read()
        return resp.status, resp.headers["X-Request-ID"]


async def admin_get(http: aiohttp.ClientSession, url: str, path: str, **params: Any) -> Any:
    async with http.get(url + "/admin/api" + path, params=params, headers=bearer(ADMIN)) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def traffic(http: aiohttp.ClientSession, gw_url: str, primary) -> dict[str, str]:
    """Requests of every kind the views show; their ids by name, once their usage records are stored."""
    ids: dict[str, str] = {}
    for n in range(2):
        status, ids[f"alice{n}"] = await chat(http, gw_url, ALICE, "openai/gpt-4o-mini")
        assert status == 200
    primary.queue(Script(status=500))  # the primary fails once: the backup answers, the breaker opens
    status, ids["fallback"] = await chat(http, gw_url, ALICE, "openai/gpt-4o-mini")
    assert status == 200
    status, ids["bob"] = await chat(http, gw_url, BOB, "backup/gpt-4o-mini", stream=True)
    assert status == 200
    status, ids["refused"] = await chat(http, gw_url, BOB, "openai/gpt-4o-mini")  # not in bob's strategy
    assert status == 403
    await stored(http, gw_url, ids["fallback"], ids["bob"])
    return ids


async def stored(http: aiohttp.ClientSession, url: str, *ids: str) -> None:
    async with asyncio.timeout(10):  # the usage writer stores records in batches, from its own thread
        while not set(ids) <= {r["id"] for r in await _requests(http, url)}:
            await asyncio.sleep(0.1)


async def _requests(http: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    return (await admin_get(http, url, "/requests", limit=50))["requests"]


async def show(page: Page, view: str, api_path: str) -> Any:
    """Open ``view`` (a hash) and wait until it is drawn; the admin API's answer it was drawn from."""
    async with page.expect_response(lambda r: f"/admin/api{api_path}" in r.url) as answer:
        await page.goto(page.url.split("#")[0] + "#" + view)
    await page.wait_for_selector(f'.view[data-view="{view.split("?")[0].split("/")[0]}"][data-ready]')
    return await (await answer.value).json()


async def value(page: Page, selector: str) -> str | None:
    return await page.get_attribute(selector, "data-v")


async def chart_data(page: Page, selector: str) -> list[list[float | None]]:
    """The data the chart (uPlot's instance on its container) draws, after checking its canvas has pixels."""
    painted = await page.evaluate(
        """(sel) => {
            const canvas = document.querySelector(sel + " canvas");
            const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let n = 0;
            for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) n++;
            return n;
        }""",
        selector,
    )
    assert painted > 0
    return await page.evaluate("(sel) => document.querySelector(sel).chart.data", selector)


async def login(page: Page, secret: str) -> None:
    await page.fill("#secret", secret)
    await page.click("#login-form button[type=submit]")


async def check_overview(page: Page, records: list[dict[str, Any]]) -> None:
    async with page.expect_response(lambda r: "/admin/api/overview?range=1h" in r.url) as answer:
        await login(page, ADMIN)
    await page.wait_for_selector('.view[data-view="overview"][data-ready]')
    hour = await (await answer.value).json()
    tokens = sum(r["total_tokens"] for r in records)
    assert tokens == 4 * TOKENS  # four answers of the fake's usage: the usage records hold what was sent
    assert hour["today"]["total_tokens"] == tokens
    assert await page.text_content('[data-card="today.total_tokens"] .value') == f"{tokens:,}"
    assert await page.text_content('[data-card="today.requests"] .value') == f"{hour['today']['requests']:,}"
    assert await page.text_content('[data-card="version"] .value') == hour["version"]
    assert float(await value(page, '[data-k="1h.requests"]') or -1) == hour["requests"]
    assert float(await value(page, '[data-k="1h.duration_p95"]') or -1) == hour["duration_ms"]["p95"]
    times, per_minute, error_rate = await chart_data(page, "#chart-1h")
    assert times == [b["t"] for b in hour["series"]]
    assert per_minute == [b["requests"] for b in hour["series"]] and sum(per_minute) >= 5
    assert max(error_rate) > 0  # the refused request
    day = await chart_data(page, "#chart-24h")
    assert sum(day[1]) * 15 >= 5  # 15-minute buckets, drawn per minute


async def check_providers(page: Page, http: aiohttp.ClientSession, gw_url: str) -> None:
    doc = await show(page, "providers", "/providers")
    ids = [t["id"] for p in doc["providers"] for t in p["targets"]]
    assert "openai/gpt-4o-mini" in ids and "backup/gpt-4o-mini" in ids
    for target in ids:
        assert await page.query_selector(f'tr[data-target="{target}"]') is not None
    row = 'tr[data-target="openai/gpt-4o-mini"]'
    assert await value(page, f'{row} [data-k="breaker"]') == "open"
    assert await page.text_content(f'{row} [data-k="last_error"]') not in ("", "—")
    await page.click(f'{row} button[data-action="reset"]')
    await page.wait_for_selector(f'.view[data-ready] {row} [data-k="breaker"][data-v="closed"]')
    after = await admin_get(http, gw_url, "/providers")
    states = {t["id"]: t["breaker"]["state"] for p in after["providers"] for t in p["targets"]}
    assert states["openai/gpt-4o-mini"] == "closed"


async def check_clients(page: Page, http: aiohttp.ClientSession, gw_url: str) -> str:
    """The clients' numbers, then suspend and resume bob; the id of bob's request once resumed."""
    doc = await show(page, "clients", "/clients")
    for client in doc["clients"]:
        row = f'tr[data-client="{client["name"]}"]'
        for key in ("today.requests", "today.total_tokens", "month.requests", "month.total_tokens"):
            period, field = key.split(".")
            assert float(await value(page, f'{row} [data-k="{key}"]') or -1) == client[period][field]
    bob = next(c for c in doc["clients"] if c["name"] == "bob")
    assert bob["today"]["total_tokens"] == TOKENS
    limit = bob["limits"][0]
    bar = 'tr[data-client="bob"] [data-limit="%s"]' % limit["name"]
    assert float(await page.get_attribute(bar, "data-max") or -1) == limit["limit"]
    assert await page.eval_on_selector(f"{bar} meter", "m => [m.value, m.max]") == [limit["used"], limit["limit"]]
    html = await page.content()
    assert not [secret for secret in (ALICE, BOB, CAROL, ADMIN) if secret in html]

    await page.click('tr[data-client="bob"] button[data-action="suspend"]')
    await page.wait_for_selector('.view[data-ready] tr[data-client="bob"] button[data-action="resume"]')
    assert (await chat(http, gw_url, BOB, "backup/gpt-4o-mini"))[0] == 401
    await page.click('tr[data-client="bob"] button[data-action="resume"]')
    await page.wait_for_selector('.view[data-ready] tr[data-client="bob"] button[data-action="suspend"]')
    status, request_id = await chat(http, gw_url, BOB, "backup/gpt-4o-mini")
    assert status == 200
    return request_id


async def check_usage(page: Page) -> None:
    doc = await show(page, "usage?by=model", "/usage")
    assert doc["by"] == "model" and doc["rows"]
    for row in doc["rows"]:
        cells = f'tr[data-key="{row["model"] or ""}"]'
        assert float(await value(page, f'{cells} [data-k="total_tokens"]') or -1) == row["total_tokens"]
        assert float(await value(page, f'{cells} [data-k="requests"]') or -1) == row["requests"]
    xs, tokens = await chart_data(page, "#chart-usage")
    assert tokens == [r["total_tokens"] for r in doc["rows"]] and sum(tokens) > 0
    href = await page.get_attribute("#usage-csv", "href")
    assert href is not None and "format=csv" in href
    answer = await page.request.get(page.url.split("/ui/")[0] + href)  # with the page's session cookie
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await answer.text())))
    expected = [(r["model"] or "", r["total_tokens"]) for r in doc["rows"]]
    assert [(r["model"], int(r["total_tokens"])) for r in rows] == expected


async def check_requests(page: Page, ids: dict[str, str]) -> None:
    doc = await show(page, "requests", "/requests")
    shown = await page.eval_on_selector_all("tr[data-id]", "rows => rows.map(r => r.dataset.id)")
    assert shown == [r["id"] for r in doc["requests"]]
    assert set(ids.values()) <= set(shown)
    times = [r["ts"] for r in doc["requests"]]
    assert times == sorted(times, reverse=True)  # newest first

    async with page.expect_response(lambda r: "/admin/api/requests?" in r.url and "client=bob" in r.url) as answer:
        await page.fill('#requests-filter input[name="client"]', "bob")
        await page.click('#requests-filter button[type="submit"]')
    filtered = (await (await answer.value).json())["requests"]
    await page.wait_for_selector('.view[data-view="requests"][data-ready]')
    clients = await page.eval_on_selector_all('tr[data-id] [data-k="client"]', "cells => cells.map(c => c.dataset.v)")
    assert clients and set(clients) == {"bob"} and len(clients) == len(filtered)
    assert ids["bob"] in await page.eval_on_selector_all("tr[data-id]", "rows => rows.map(r => r.dataset.id)")

    await page.fill('#requests-lookup input[name="id"]', ids["fallback"])
    await page.click('#requests-lookup button[type="submit"]')
    await page.wait_for_selector('.view[data-view="requests"][data-ready] #request-detail')
    assert await value(page, '#request-detail [data-k="id"]') == ids["fallback"]
    assert await value(page, '#request-detail [data-k="attempts"]') == "2"
    assert await value(page, '#request-detail [data-k="provider"]') == "backup"
    assert await value(page, '#request-detail [data-k="total_tokens"]') == str(TOKENS)


async def check_audit(page: Page) -> None:
    doc = await show(page, "audit", "/audit")
    actions = await page.eval_on_selector_all('tr[data-id] [data-k="action"]', "cells => cells.map(c => c.dataset.v)")
    assert actions == [r["action"] for r in doc["records"]]
    assert {"suspend", "resume", "reset_cooldown"} <= set(actions)
    actors = await page.eval_on_selector_all('tr[data-id] [data-k="actor"]', "cells => cells.map(c => c.dataset.v)")
    assert set(actors) == {"ops"}


async def check_widths(page: Page, out: Path) -> None:
    """No horizontal scrolling on any view at a laptop's or a desktop's width, nor at 200 % zoom (half as
    many CSS pixels: a wide table scrolls in its own box); a screenshot of each."""
    sizes = [(w, 900, f"{w}") for w in WIDTHS] + [(w // 2, 450, f"{w}-zoom200") for w in ZOOMED]
    for width, height, name in sizes:
        await page.set_viewport_size({"width": width, "height": height})
        for view in VIEWS:
            await page.goto(page.url.split("#")[0] + "#" + view)
            await page.wait_for_selector(f'.view[data-view="{view}"][data-ready]')
            scroll, client = await page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert scroll <= client, f"{view} at {name}px scrolls sideways ({scroll} > {client})"
            lines = await page.evaluate("document.querySelector('main').innerText.split('\\n')")
            stray = [line for line in lines if line.strip() in ("null", "undefined", "NaN", "[object Object]")]
            assert not stray, f"{view} shows a value the page failed to format: {stray}"
            await page.screenshot(path=str(out / f"{view}-{name}.png"), full_page=True)


async def test_an_admin_sees_real_traffic_on_every_view_and_suspends_a_client(
    fake_upstream, start_gateway, http, screenshots
):
    primary, backup = await fake_upstream("primary"), await fake_upstream("backup")
    gw = await start_gateway(config(primary, backup))
    ids = await traffic(http, gw.url, primary)
    records = [r for r in await _requests(http, gw.url) if r["id"] in ids.values()]
    async with chromium() as browser:
        watched: Watched = await watched_page(browser, gw.url, 1440)
        page = watched.page
        page.set_default_timeout(15_000)
        # the non-admin's login: refused, as it must be (the page's session check before it is no error)
        watched.expected |= {("/admin/api/login", 403)}
        await page.goto(gw.url + "/ui")  # redirected to /ui/
        await page.wait_for_selector("#login-form")
        await login(page, BOB)  # a client, but not an admin
        await page.wait_for_selector("#login-error:has-text('not an admin')")
        assert await page.is_hidden("#nav")

        await check_overview(page, records)
        await check_providers(page, http, gw.url)
        await stored(http, gw.url, await check_clients(page, http, gw.url))  # the next views count it
        await check_usage(page)
        await check_requests(page, ids)
        await check_audit(page)
        await check_widths(page, screenshots)
        await watched.assert_clean()


async def test_a_wrong_secret_is_refused_at_login_and_logout_ends_the_session(fake_upstream, start_gateway):
    primary, backup = await fake_upstream("primary"), await fake_upstream("backup")
    gw = await start_gateway(config(primary, backup))
    async with chromium() as browser:
        watched = await watched_page(browser, gw.url, 1280)
        page = watched.page
        page.set_default_timeout(15_000)
        watched.expected |= {("/admin/api/login", 401)}
        await page.goto(gw.url + "/ui/")
        await login(page, "lr-not-a-secret-of-anyone-0123456789")
        await page.wait_for_selector("#login-error:not(:empty)")
        assert await page.is_hidden("#nav")
        await login(page, ADMIN)
        await page.wait_for_selector('.view[data-view="overview"][data-ready]')
        await page.reload()  # the session cookie holds across a reload
        await page.wait_for_selector('.view[data-view="overview"][data-ready]')
        await page.click("#logout")
        await page.wait_for_selector("#login-form")
        await page.reload()
        await page.wait_for_selector("#login-form")
        assert await page.is_hidden("#nav")
        await watched.assert_clean()


async def test_the_page_files_their_headers_and_the_icon(gw, http):
    async with http.get(gw.url + "/ui", allow_redirects=False) as resp:
        assert resp.status == 308 and resp.headers["Location"] == "ui/"
    async with http.get(gw.url + "/ui/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
        etag = resp.headers["ETag"]
        csp = resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Cache-Control"] == "no-cache"
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "<script>" not in page and "style=" not in page and "http" not in page.replace("http-equiv", "")
    async with http.get(gw.url + "/ui/", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304  # revalidated, not sent again
    scripts = (("js/main.js", "text/javascript"), ("app.css", "text/css"), ("vendor/uPlot.esm.js", "text/javascript"))
    for path, kind in scripts:
        async with http.get(f"{gw.url}/ui/{path}") as resp:
            assert resp.status == 200 and resp.content_type == kind, path
            assert "Content-Security-Policy" in resp.headers
    async with http.get(gw.url + "/favicon.ico") as resp:
        assert resp.status == 200 and resp.content_type.startswith("image/")
        assert (await resp.read())[:4] == b"\x00\x00\x01\x00"  # an icon file's header
    for path in ("/ui/nope.js", "/ui/%2e%2e/%2e%2e/api/routes.py", "/ui/vendor/uPlot.LICENSE", "/v1/ui/"):
        async with http.get(gw.url + path) as resp:
            assert resp.status == 404, path
            assert (await resp.json())["error"]["code"] == "not_found"


async def test_head_like_get_and_odd_paths_are_404(gw, http):
    for path in ("/ui/", "/ui/js/main.js", "/ui/app.css", "/favicon.ico"):
        async with http.get(gw.url + path) as got, http.head(gw.url + path) as head:
            assert head.status == 200 == got.status, path
            assert head.headers["Content-Type"] == got.headers["Content-Type"], path
            assert head.headers["Content-Length"] == got.headers["Content-Length"], path
            assert head.headers["Content-Security-Policy"] == got.headers["Content-Security-Policy"]
            assert await head.read() == b""
    async with http.head(gw.url + "/ui", allow_redirects=False) as resp:
        assert resp.status == 308
    async with http.head(gw.url + "/ui/nope.js") as resp:
        assert resp.status == 404
    for path in ("/ui/%00", "/ui/js/%00.js", "/ui/a%00b/../index.html", "/ui/" + "a" * 5000 + ".js"):
        async with http.get(URL(gw.url + path, encoded=True)) as resp:
            assert resp.status == 404, path
            assert (await resp.json())["error"]["code"] == "not_found"


def test_the_package_data_holds_every_file_of_the_page_and_the_charting_librarys_licence():
    """What setup.cfg's package_data globs match is what an installed package has: every file of the page."""
    root = Path(__file__).resolve().parents[2]
    parser = configparser.ConfigParser()
    parser.read(root / "setup.cfg")
    globs = parser["options.package_data"]["gateway"].split()
    static = root / "gateway" / "ui" / "static"
    files = [p.relative_to(root / "gateway").as_posix() for p in static.rglob("*") if p.is_file()]
    assert "ui/static/index.html" in files and "ui/static/vendor/uPlot.esm.js" in files
    assert [f for f in files if not any(fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)] == []
    assert "MIT License" in (static / "vendor" / "uPlot.LICENSE").read_text()
