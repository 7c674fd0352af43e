"""Debian's chromium, driven by Playwright for Python (its own browser download cannot work offline): a page
that records what a test must see none of: console errors, uncaught exceptions, Content-Security-Policy
violations, requests to any other origin."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Request, async_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# every violation, pushed where the test reads it (an init script runs before the page's own, outside its CSP)
_STATUS = "the server responded with a status of"
_CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: tests/run installs Debian's chromium package")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Watched:
    page: Page
    origin: str
    errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    expected: set[tuple[str, int]] = field(default_factory=set)  # (path, status) answers the test asked for

    def console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        # chromium logs every error status a fetch gets; only those a test provoked on purpose are no fault
        if any(
            url == self.origin + path and message.text.startswith(f"Failed to load resource: {_STATUS} {status} ")
            for path, status in self.expected
        ):
            return
        self.errors.append(f"console: {message.text} ({url})")

    def request(self, request: Request) -> None:
        self.urls.append(request.url)

    async def assert_clean(self) -> None:
        """No console error, no uncaught exception, no CSP violation, nothing asked of another origin."""
        violations = await self.page.evaluate("window.__cspViolations")
        assert violations == []
        assert self.errors == [], self.errors
        foreign = [u for u in self.urls if not u.startswith(self.origin + "/")]
        assert foreign == []
        assert self.urls  # the listener saw the page's own requests


async def watched_page(browser: Browser, origin: str, width: int, **options: Any) -> Watched:
    """``options``: the browser context's (e.g. ``timezone_id``)."""
    context = await browser.new_context(viewport={"width": width, "height": 900}, **options)
    page = await context.new_page()
    watched = Watched(page, origin)
    page.on("console", watched.console)
    page.on("pageerror", lambda exc: watched.errors.append(f"uncaught: {exc}"))
    page.on("request", watched.request)
    await page.add_init_script(_CSP_LISTENER)
    return watched
