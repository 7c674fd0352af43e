"""The operator page's firewall, cache and pool parts in a real browser (Debian's chromium, driven by
Playwright): a client's request held by an `ask` rule shows up on the Approvals view while it waits (the
view asks again every few seconds) and the nav counts it; the admin allows one from the page (the request
answers 200) and denies another (403 firewall_denied); one decided through the API vanishes from the page;
"allow for" takes its seconds from the page's input; the Audit view lists every decision with who made it;
the Overview shows the response cache's hit ratio and size and the firewall's decisions equal to
``/metrics``; the Providers view shows each pool target's requests equal to the metrics. No console error,
no CSP violation, nothing fetched from another origin, no horizontal scroll."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Page
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ALICE, bearer
from tests.ui.browser import Watched, chromium, watched_page
from tests.ui.test_operator_page import ADMIN, check_widths, login, show, value

ASKED = "openai/gpt-4o"


def config(primary, backup) -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1", "port": 0},
        "providers": [
            {"name": "openai", "base_url": primary.base_url, "api_key": "sk-upstream-primary-key",
             "models": ["gpt-4o-mini", "gpt-4o"]},
            {"name": "backup", "base_url": backup.base_url, "api_key": "sk-upstream-backup-key",
             "models": ["gpt-4o-mini"]},
        ],
        "pools": [{"name": "mini", "targets": ["openai/gpt-4o-mini", "backup/gpt-4o-mini"]}],
        "strategies": [
            {"name": "agents", "allow": ["openai/*", "backup/*", "pool/*"], "cache": True,
             "firewall": [{"match": ASKED, "action": "ask"}]},
            {"name": "ops", "allow": ["openai/*"]},
        ],
        "clients": [
            {"name": "alice", "secret": ALICE, "strategy": "agents"},
            {"name": "ops", "secret": ADMIN, "strategy": "ops", "admin": True},
        ],
        "firewall": {"ask_timeout": 60, "secrets": "off"},
    }  # fmt: skip


async def send(http: aiohttp.ClientSession, url: str, model: str, text: str) -> tuple[int, dict[str, str], Any]:
    """alice's chat completion over HTTP: status, headers, body."""
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    async with http.post(url + "/v1/chat/completions", json=body, headers=bearer(ALICE)) as resp:
        return resp.status, dict(resp.headers), await resp.json()


async def metrics(http: aiohttp.ClientSession, url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``, by name and labels."""
    async with http.get(url + "/metrics") as resp:
        text = await resp.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def summed(samples: dict[tuple[str, Any], float], name: str, **labels: str) -> float:
    return sum(v for (n, found), v in samples.items() if n == name and set(labels.items()) <= set(found))


async def held_row(page: Page) -> str:
    """The Approvals view's one row, once the view's own refresh shows it (the test never reloads the
    view), and the nav's count of it: its approval id."""
    row = await page.wait_for_selector("tbody tr[data-id]")
    assert row is not None
    await page.wait_for_selector('#approvals-count:visible:text-is("1")')
    assert await page.eval_on_selector_all("tbody tr[data-id]", "rows => rows.length") == 1
    for key, expected in (("client", "alice"), ("what", ASKED), ("rule", ASKED)):
        assert await value(page, f'tbody tr[data-id] [data-k="{key}"]') == expected
    return await row.get_attribute("data-id") or ""


async def gone(page: Page, approval_id: str) -> None:
    await page.wait_for_selector(f'tr[data-id="{approval_id}"]', state="detached")
    await page.wait_for_selector("#approvals-empty:visible")
    await page.wait_for_selector("#approvals-count", state="hidden")


async def decide_on_the_page(page: Page, http: aiohttp.ClientSession, url: str, out: Path) -> None:
    """Allow once, deny, a decision made elsewhere, allow for N seconds (a screenshot of a held request)."""
    await show(page, "approvals", "/approvals")
    await page.wait_for_selector("#approvals-empty:visible")
    held = asyncio.create_task(send(http, url, ASKED, "first"))
    first = await held_row(page)
    assert not held.done()
    await page.click(f'tr[data-id="{first}"] button[data-decision="allow_once"]')
    status, headers, body = await asyncio.wait_for(held, 15)
    assert status == 200 and headers["x-localrouter-model"] == ASKED
    await gone(page, first)
    assert "allowed once" in (await page.text_content("#approvals-note") or "")

    held = asyncio.create_task(send(http, url, ASKED, "second"))
    second = await held_row(page)
    await page.click(f'tr[data-id="{second}"] button[data-decision="deny"]')
    status, _, body = await asyncio.wait_for(held, 15)
    assert status == 403 and body["error"]["code"] == "firewall_denied"
    await gone(page, second)

    held = asyncio.create_task(send(http, url, ASKED, "third"))
    third = await held_row(page)
    async with http.post(f"{url}/admin/api/approvals/{third}", json={"decision": "deny"}, headers=bearer(ADMIN)) as r:
        assert r.status == 200
    assert (await asyncio.wait_for(held, 15))[0] == 403
    await gone(page, third)  # decided elsewhere: the view's next refresh drops it

    held = asyncio.create_task(send(http, url, ASKED, "fourth"))
    fourth = await held_row(page)
    await no_sideways_scroll(page, 1024)  # the widest row: every decision's button
    await page.screenshot(path=str(out / "approvals-waiting-1024.png"), full_page=True)
    await page.fill(f'tr[data-id="{fourth}"] input[name="seconds"]', "90")
    async with page.expect_request(lambda r: r.url.endswith(f"/approvals/{fourth}")) as posted:
        await page.click(f'tr[data-id="{fourth}"] button[data-decision="allow_for"]')
    assert (await posted.value).post_data_json == {"decision": "allow_for", "seconds": 90}
    assert (await asyncio.wait_for(held, 15))[0] == 200
    await gone(page, fourth)
    assert (await send(http, url, ASKED, "fifth"))[0] == 200  # granted for 90 s: not held
    await page.set_viewport_size({"width": 1440, "height": 900})


async def no_sideways_scroll(page: Page, width: int) -> None:
    await page.set_viewport_size({"width": width, "height": 900})
    scroll, client = await page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll <= client, f"scrolls sideways at {width}px ({scroll} > {client})"


async def audited(http: aiohttp.ClientSession, url: str, count: int) -> None:
    """Once ``count`` audit records are stored (the writer stores them in batches, from its own thread)."""
    async with asyncio.timeout(10):
        while True:
            async with http.get(url + "/admin/api/audit", headers=bearer(ADMIN)) as resp:
                if len((await resp.json())["records"]) >= count:
                    return
            await asyncio.sleep(0.1)


async def check_audit(page: Page) -> None:
    doc = await show(page, "audit?kind=firewall", "/audit")
    rows = await page.eval_on_selector_all(
        "tr[data-id]",
        "rows => rows.map(r => ({id: r.dataset.id, "
        "...Object.fromEntries([...r.cells].map(c => [c.dataset.k, c.dataset.v]))}))",
    )
    assert [r["id"] for r in rows] == [r["id"] for r in doc["records"]]
    # newest first: granted (by the grant), allow for, deny (through the API), deny, allow once (on the page)
    assert [(r["kind"], r["action"], r["actor"]) for r in rows] == [
        ("firewall", "granted", "grant"),
        ("firewall", "allow_for", "ops"),
        ("firewall", "deny", "ops"),
        ("firewall", "deny", "ops"),
        ("firewall", "allow_once", "ops"),
    ]
    assert all(r["client"] == "alice" and r["subject"] == ASKED and r["rule"] == ASKED for r in rows)
    assert rows[0]["held_ms"] == "" and all(float(r["held_ms"]) > 0 for r in rows[1:])
    held = await page.text_content('tr[data-id] [data-k="held_ms"]:not([data-v=""])')
    assert held and held != "—"
    everything = await show(page, "audit", "/audit")  # every kind (no operator action was taken)
    assert [r["id"] for r in everything["records"]] == [r["id"] for r in doc["records"]]


async def check_overview(page: Page, http: aiohttp.ClientSession, url: str) -> None:
    doc = await show(page, "overview", "/overview")
    samples = await metrics(http, url)
    hits = summed(samples, "localrouter_cache_lookups_total", result="hit")
    lookups = summed(samples, "localrouter_cache_lookups_total")
    assert 0 < hits < lookups
    assert doc["cache"]["hit_ratio"] == hits / lookups
    assert float(await value(page, '[data-card="cache.hit_ratio"]') or -1) == hits / lookups
    assert await page.text_content('[data-card="cache.hit_ratio"] .value') == f"{100 * hits / lookups:.2f} %"
    size = summed(samples, "localrouter_cache_bytes")
    assert size > 0 and float(await value(page, '[data-card="cache.bytes"]') or -1) == size
    decisions = summed(samples, "localrouter_firewall_decisions_total")
    assert decisions == 5 and float(await value(page, '[data-card="firewall.total"]') or -1) == decisions
    assert doc["firewall"]["by_action"] == {"allow_for": 1, "allow_once": 1, "deny": 2, "granted": 1}


async def check_pools(page: Page, http: aiohttp.ClientSession, url: str) -> None:
    doc = await show(page, "providers", "/providers")
    [pool] = doc["pools"]
    assert pool["id"] == "pool/mini" and pool["balance"] == "round_robin"
    samples = await metrics(http, url)
    for target in ("openai/gpt-4o-mini", "backup/gpt-4o-mini"):
        served = summed(samples, "localrouter_pool_requests_total", pool="mini", target=target)
        assert served == 1
        cells = f'tr[data-pool-target="pool/mini {target}"]'
        assert float(await value(page, f'{cells} [data-k="requests"]') or -1) == served


async def test_an_admin_decides_held_requests_on_the_page_and_sees_the_cache_and_the_pools(
    fake_upstream, start_gateway, http, screenshots
):
    primary = await fake_upstream("primary", models=("gpt-4o-mini", "gpt-4o"))
    backup = await fake_upstream("backup")
    gw = await start_gateway(config(primary, backup))
    for n in range(2):  # round robin: one each
        assert (await send(http, gw.url, "pool/mini", f"pooled {n}"))[0] == 200
    caching = [(await send(http, gw.url, "openai/gpt-4o-mini", "again"))[1]["x-localrouter-cache"] for _ in range(2)]
    assert caching == ["miss", "hit"]
    async with chromium() as browser:
        watched: Watched = await watched_page(browser, gw.url, 1440)
        page = watched.page
        page.set_default_timeout(15_000)
        watched.expected |= {("/admin/api/session", 401)}
        await page.goto(gw.url + "/ui/")
        await login(page, ADMIN)
        await page.wait_for_selector('.view[data-view="overview"][data-ready]')

        await decide_on_the_page(page, http, gw.url, screenshots)
        await audited(http, gw.url, 5)
        await check_audit(page)
        await check_overview(page, http, gw.url)
        await check_pools(page, http, gw.url)
        await page.screenshot(path=str(screenshots / "overview-cache.png"), full_page=True)
        await check_widths(page, screenshots)
        await watched.assert_clean()
