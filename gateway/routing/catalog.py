"""Which models each provider serves: from the config, or asked from the upstream and cached."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from providers.base import ModelInfo, Provider, ProviderError, UpstreamRejected

log = logging.getLogger("localrouter.catalog")

Models = Mapping[str, ModelInfo]
STARTUP_WAIT = 2.0  # seconds ``serve`` waits for the first discoveries before it reports them


class Catalog:
    """Discovered lists are kept ``ttl`` seconds (``retry`` after a failure) and refreshed in the
    background while the old answer is still served, so only the first lookup ever waits."""

    def __init__(self, providers: Mapping[str, Provider], ttl: float = 600.0, retry: float = 30.0) -> None:
        self._providers = providers
        self._ttl = ttl
        self._retry = retry
        self._static: dict[str, Models] = {
            name: {m: ModelInfo(m) for m in p.config.models}
            for name, p in providers.items()
            if p.config.models is not None
        }
        self._cache: dict[str, tuple[float, Models | None]] = {}
        self._pending: dict[str, asyncio.Task[Models | None]] = {}
        self._errors: dict[str, str] = {}  # why the last discovery failed, per provider (adapters keep secrets out)
        self._discovered: dict[str, float] = {}  # when each provider's last discovery worked (Unix seconds)

    def known(self, provider: str) -> tuple[Models, bool | None, float | None]:
        """For the operator, nothing asked of the upstream: the models known now, whether the last discovery
        worked (None: a configured list, or none finished yet), and when one last worked."""
        static = self._static.get(provider)
        if static is not None:
            return static, None, None
        models = self._cache.get(provider, (0.0, None))[1] or {}
        reachable = False if provider in self._errors else True if provider in self._discovered else None
        return models, reachable, self._discovered.get(provider)

    def start(self) -> None:
        """Begin discovery for every provider without a configured list."""
        for name in self._providers:
            if name not in self._static:
                self._refresh(name)

    async def close(self) -> None:
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def failures(self) -> dict[str, str]:
        """Providers whose last discovery failed, and why. Asking also retries those whose retry delay is
        over, so that an upstream that came up is noticed without waiting for a request to need it."""
        now = time.monotonic()
        for name in list(self._errors):
            if self._cache[name][0] <= now:
                self._refresh(name)
        return dict(self._errors)

    async def report(self, wait: float = STARTUP_WAIT) -> list[str]:
        """One line per provider for the operator at startup, after waiting up to ``wait`` seconds for
        the first discoveries (a slow upstream must not hold the gateway back)."""
        if self._pending:
            await asyncio.wait(list(self._pending.values()), timeout=wait)
        return [
            f"provider {name} ({p.config.type}, {p.config.shown_url}): {self._state(name)}"
            for name, p in self._providers.items()
        ]

    def _state(self, name: str) -> str:
        if name in self._static:
            return f"{len(self._static[name])} models (configured)"
        if name in self._errors:
            return f"model discovery failed: {self._errors[name]}; tried again after {self._retry:g}s"
        entry = self._cache.get(name)
        if entry is None:
            return "discovering its models (a failure will be logged)"
        return f"{len(entry[1] or {})} models discovered"

    async def models(self, provider: str) -> Models | None:
        """The provider's models, or None when it does not say (discovery failed)."""
        static = self._static.get(provider)
        if static is not None:
            return static
        entry = self._cache.get(provider)
        if entry is not None:
            if entry[0] <= time.monotonic():
                self._refresh(provider)
            return entry[1]
        return await asyncio.shield(self._refresh(provider))

    def _refresh(self, provider: str) -> asyncio.Task[Models | None]:
        task = self._pending.get(provider)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._discover(provider))
            self._pending[provider] = task
        return task

    async def _discover(self, name: str) -> Models | None:
        try:
            found: Models | None = {m.id: m for m in await self._providers[name].list_models()}
            expiry = time.monotonic() + self._ttl
            self._discovered[name] = time.time()
            if self._errors.pop(name, None) is not None:
                log.info("model discovery for provider %r works again: %d models", name, len(found or {}))
        except (ProviderError, UpstreamRejected) as exc:
            log.warning("model discovery for provider %r failed: %s", name, exc)
            self._errors[name] = str(exc)
            found = self._cache.get(name, (0.0, None))[1]  # keep the last good answer
            expiry = time.monotonic() + self._retry
        finally:
            self._pending.pop(name, None)
        self._cache[name] = (expiry, found)
        return found
