"""Which models each provider serves: from the config, or asked from the upstream and cached."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from providers.base import ModelInfo, Provider, ProviderError, UpstreamRejected

log = logging.getLogger("localrouter.catalog")

Models = Mapping[str, ModelInfo]


class Catalog:
    """Discovered lists are kept ``ttl`` seconds (``retry`` after a failure) and refreshed in the
    background while the old answer is still served, so only the first lookup ever waits."""

    def __init__(self, providers: Mapping[str, Provider], ttl: float = 600.0, retry: float = 30.0) -> None:
        self._providers = providers
        self._ttl = ttl
        self._retry = retry
        self._static: dict[str, Models] = {
            name: {m: ModelInfo(m) for m in p.config.models}
            for name, p in providers.items() if p.config.models is not None
        }
        self._cache: dict[str, tuple[float, Models | None]] = {}
        self._pending: dict[str, asyncio.Task[Models | None]] = {}

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

    def is_static(self, provider: str) -> bool:
        """Its models come from the config: the answer never changes while this catalog lives."""
        return provider in self._static

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
        except (ProviderError, UpstreamRejected) as exc:
            log.warning("model discovery for provider %r failed: %s", name, exc)
            found = self._cache.get(name, (0.0, None))[1]  # keep the last good answer
            expiry = time.monotonic() + self._retry
        finally:
            self._pending.pop(name, None)
        self._cache[name] = (expiry, found)
        return found
