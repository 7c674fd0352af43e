"""What every store of the response cache offers."""

from __future__ import annotations

import abc

from gateway.cache.entry import Entry


class ResponseCache(abc.ABC):
    backend = "memory"
    #: the metrics' gauge of the bytes held (the memory store's; set by the app when metrics are on)
    size_cell: list[float] | None = None

    @abc.abstractmethod
    async def get(self, key: str) -> Entry | None:
        """The entry under ``key`` if it is there and not expired; None otherwise, and when the store
        cannot be reached (a cache that fails is a miss, never an error)."""

    @abc.abstractmethod
    async def put(self, key: str, entry: Entry, ttl: int) -> None:
        """Keep ``entry`` under ``key`` for ``ttl`` seconds (replacing what was there); a store that
        fails keeps nothing, and says so in the log."""

    async def close(self) -> None:
        return None
