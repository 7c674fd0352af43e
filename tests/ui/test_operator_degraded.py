"""The operator page in a real browser (Debian's chromium, driven by Playwright) when things are not all
well, and the details a first review found missing: a cache hit marked on the Requests list, its saving in
the detail and the Usage table; the Requests model filter matching a pool id; the Usage range in UTC days
whatever the browser's time zone; the usage store down (Providers and Clients keep their actions, a banner
says so); usage records off (a notice instead of zeros); a provider whose discovery fails (why, and the
targets the config names, with their reset); the gateway stopped and restarted (a notice while it is
down, then the login again, the restart having ended the session)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from playwright.async_api import Page

from tests.conftest import ALICE, bearer
from tests.gateway.test_admin_api import admin_config
from tests.procs import start_serve, stop, write_config
from tests.redisserver import free_port
from tests.ui.browser import Watched, chromium, watched_page
from tests.ui.test_operator_page import ADMIN, admin_get, login, show, stored, value


async def _chat(http: aiohttp.ClientSession, url: str, model: str = "openai/gpt-4o-mini", text: str = "hi") -> str:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    async with http.post(url + "/v1/chat/completions", json=body, headers=bearer(ALICE)) as resp:
        await resp.read()
        assert resp.status == 200
        return resp.headers["X-Request-ID"]


async def _open(watched: Watched, url: str, view: str) -> Page:
    page = watched.page
    page.set_default_timeout(15_000)
    await page.goto(f"{url}/ui/#{view}")
    await login(page, ADMIN)
    await page.wait_for_selector(f'.view[data-view="{view}"][data-ready]')
    return page


async def test_cache_hits_the_model_filter_and_utc_days(upstreams, start_gateway, http) -> None:
    data = admin_config(*upstreams, pools=[{"name": "mini", "targets": ["openai/gpt-4o-mini"]}])
    data["strategies"][0] |= {"cache": True}
    data["strategies"][0]["allow"].append("pool/*")
    data["providers"][0]["prices"] = {"gpt-4o-mini": {"input_per_1m": 1.0, "output_per_1m": 2.0}}
    gw = await start_gateway(data)
    miss, hit, _ = [await _chat(http, gw.url) for _ in range(3)]
    pooled = await _chat(http, gw.url, "pool/mini", "pooled")
    await stored(http, gw.url, miss, hit, pooled)
    saved = (await admin_get(http, gw.url, f"/requests/{hit}"))["saved_usd"]
    async with chromium() as browser:
        # UTC+14: the browser's midnight is never UTC's
        watched = await watched_page(browser, gw.url, 1440, timezone_id="Pacific/Kiritimati")
        page = await _open(watched, gw.url, "requests")
        assert await page.query_selector(f'tr[data-id="{hit}"] [data-k="status"] .pill:text-is("cached")')
        assert not await page.query_selector(f'tr[data-id="{miss}"] [data-k="status"] .pill:text-is("cached")')
        await show(page, f"requests/{hit}", f"/requests/{hit}")
        assert await page.text_content('#request-detail [data-k="cached"]') == f"cached (saved ${saved:.6f})"

        await show(page, "requests", "/requests")
        async with page.expect_response(lambda r: "/admin/api/requests?" in r.url and "model=pool" in r.url):
            await page.fill('#requests-filter input[name="model"]', "pool/mini")
            await page.click('#requests-filter button[type="submit"]')
        await page.wait_for_selector('.view[data-view="requests"][data-ready]')
        assert await page.eval_on_selector_all("tr[data-id]", "rows => rows.map(r => r.dataset.id)") == [pooled]

        async with page.expect_request(lambda r: "/admin/api/usage?" in r.url) as asked:
            await page.goto(page.url.split("#")[0] + "#usage")
        await page.wait_for_selector('.view[data-view="usage"][data-ready]')
        since = float(dict(p.split("=") for p in (await asked.value).url.split("?")[1].split("&"))["since"])
        today = datetime.now(UTC).date()
        assert since == datetime(*(today - timedelta(days=29)).timetuple()[:3], tzinfo=UTC).timestamp()
        assert await page.input_value('#usage-form input[name="until"]') == today.isoformat()
        assert "UTC" in await page.text_content("#usage-form label:has(input[name=since])")
        row = 'tr[data-key="alice"]'
        assert await value(page, f'{row} [data-k="cached_requests"]') == "2"
        assert float(await value(page, f'{row} [data-k="saved_usd"]') or -1) == 2 * saved
        await watched.assert_clean()


async def test_the_usage_store_down_keeps_the_actions_and_says_so(upstreams, start_gateway) -> None:
    data = admin_config(*upstreams)
    data["usage"] = {"backend": "postgres", "url": f"postgresql://lr:pw@127.0.0.1:{free_port()}/lr", "pool": 2}
    gw = await start_gateway(data)
    async with chromium() as browser:
        watched = await watched_page(browser, gw.url, 1440)
        page = await _open(watched, gw.url, "clients")
        assert "usage store unavailable" in (await page.text_content("#banner") or "").lower()
        assert await value(page, 'tr[data-client="alice"] [data-k="today.requests"]') == ""  # unknown
        await page.click('tr[data-client="alice"] button[data-action="suspend"]')
        await page.wait_for_selector('.view[data-ready] tr[data-client="alice"] button[data-action="resume"]')
        await show(page, "providers", "/providers")
        assert await page.is_visible("#banner:has-text('Usage store unavailable')")
        assert await page.query_selector('tr[data-target="openai/gpt-4o-mini"] button[data-action="reset"]')
        await watched.assert_clean()


async def test_records_off_shows_a_notice_not_zeros(upstreams, start_gateway, http) -> None:
    gw = await start_gateway(admin_config(*upstreams, usage={"path": None}))
    await _chat(http, gw.url)
    async with chromium() as browser:
        watched = await watched_page(browser, gw.url, 1440)
        watched.expected |= {("/admin/api/requests/req_unknown", 404)}
        page = await _open(watched, gw.url, "overview")
        for view in ("overview", "clients", "usage", "requests"):
            if view != "overview":  # shown after the login
                await show(page, view, f"/{view}")
            assert "usage.path: null" in (await page.text_content("#records-off") or ""), view
        await page.goto(page.url.split("#")[0] + "#requests/req_unknown")
        await page.wait_for_selector("#banner:not([hidden])")
        assert "usage records are off" in (await page.text_content("#banner") or "").lower()
        await watched.assert_clean()


async def test_a_provider_whose_discovery_fails_shows_why_and_its_named_targets(upstreams, start_gateway) -> None:
    data = admin_config(*upstreams)
    data["providers"][1]["base_url"] = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    gw = await start_gateway(data)
    async with chromium() as browser:
        watched = await watched_page(browser, gw.url, 1440)
        page = await _open(watched, gw.url, "providers")
        state = '[data-provider-state="backup"]'
        for n in range(50):  # the first discovery may still be under way
            if await page.query_selector(f"{state} .pill.bad"):
                break
            await asyncio.sleep(0.1)
            await show(page, f"providers?n={n}", "/providers")
        assert await page.text_content(f"{state} .pill") == "unreachable"
        assert await page.text_content(f'{state} [data-k="error"]')
        assert await page.query_selector('tr[data-target="backup/gpt-4o-mini"] button[data-action="reset"]')
        await watched.assert_clean()


def _serve_config(upstreams: Any, port: int) -> dict[str, Any]:
    data = admin_config(*upstreams)
    data["server"]["port"] = port
    data["logging"] = {"access": False}
    return data  # no auth.signing_key: a restart signs with a new key, and the old session ends


async def test_the_gateway_down_and_restarted(tmp_path, upstreams) -> None:
    port = free_port()
    path = write_config(tmp_path, _serve_config(upstreams, port))
    proc, url, _ = await start_serve("-c", str(path), "--port", str(port), env={"ALICE_SECRET": ALICE})
    running: Any = proc
    try:
        async with chromium() as browser:
            watched = await watched_page(browser, url, 1440)
            page = await _open(watched, url, "overview")
            running = None
            assert await stop(proc) == 0
            await page.goto(page.url.split("#")[0] + "#clients")
            await page.wait_for_selector("#offline:has-text('Gateway unreachable')")
            assert await page.is_hidden("#login")
            await asyncio.sleep(1)
            running, url, _ = await start_serve("-c", str(path), "--port", str(port), env={"ALICE_SECRET": ALICE})
            started = time.monotonic()
            await page.wait_for_selector("#login-error:has-text('Session expired, log in again')")
            assert time.monotonic() - started < 12 and await page.is_hidden("#offline")
            await login(page, ADMIN)
            await page.wait_for_selector('.view[data-view="clients"][data-ready]')
            assert await page.is_hidden("#offline")
            uncaught = [e for e in watched.errors if not e.startswith("console: Failed to load resource")]
            assert uncaught == []  # the failed fetches are logged by the browser, never thrown
    finally:
        if running is not None:
            assert await stop(running) == 0
