"""The response cache in this process's memory: bounded by bytes, the least recently used entry evicted
first. An expired entry goes when it is next looked up, or with the least recently used."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from gateway.cache.entry import Entry
from gateway.cache.store import ResponseCache


class MemoryCache(ResponseCache):
    """``max_bytes`` bounds the encoded entries and their keys; an entry larger than that is not kept."""

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # oldest use first

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> Entry | None:
        kept = self._entries.get(key)
        if kept is None:
            return None
        if kept[0] <= self._clock():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return Entry.decode(kept[1])

    async def put(self, key: str, entry: Entry, ttl: int) -> None:
        data = entry.encode()
        size = len(key) + len(data)
        if key in self._entries:
            self._remove(key)
        if size > self.max_bytes:
            return
        while self.bytes + size > self.max_bytes:
            self._remove(next(iter(self._entries)))
        self._entries[key] = (self._clock() + ttl, data)
        self._resize(size)

    def _remove(self, key: str) -> None:
        _, data = self._entries.pop(key)
        self._resize(-len(key) - len(data))

    def _resize(self, delta: int) -> None:
        self.bytes += delta
        if self.size_cell is not None:
            self.size_cell[0] = self.bytes
