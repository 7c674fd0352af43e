"""What the response cache keeps of one answer, and how a stream's events are recorded for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway import jsonx

_LENGTH = 4  # bytes of the length of an encoded entry's metadata


@dataclass(frozen=True, slots=True)
class Entry:
    """One answer as its client got it: ``body`` is the JSON answer, or every event of a stream as sent
    (its end included: ``[DONE]``, or the dialect's last event), replayed as it is. ``headers``: the
    answer's content type and the target that served it; ``target``: (id, provider, upstream model);
    ``usage``: the usage it was accounted with (OpenAI's names); ``cost_usd``: what it cost then (None:
    the model has no price), which a hit saves."""

    stream: bool
    body: bytes
    headers: dict[str, str]
    target: tuple[str, str, str]
    usage: dict[str, Any] | None
    cost_usd: float | None

    def encode(self) -> bytes:
        """The entry as one byte string (the same in every store): the metadata's length, the metadata
        as JSON, then the body as it is (no copy of a large answer into JSON)."""
        meta = jsonx.dumps([self.stream, self.headers, self.target, self.usage, self.cost_usd])
        return len(meta).to_bytes(_LENGTH, "big") + meta + self.body

    @classmethod
    def decode(cls, data: bytes) -> Entry:
        """The entry :meth:`encode` wrote; ValueError for anything else."""
        size = int.from_bytes(data[:_LENGTH], "big")
        try:
            stream, headers, target, usage, cost = jsonx.loads(data[_LENGTH : _LENGTH + size])
        except (ValueError, TypeError) as exc:
            raise ValueError("not a response cache entry") from exc
        if not isinstance(headers, dict) or not isinstance(target, list) or len(target) != 3:
            raise ValueError("not a response cache entry")
        return cls(bool(stream), data[_LENGTH + size :], headers, (target[0], target[1], target[2]), usage, cost)


class Recording:
    """A stream's bytes as its relay sends them. ``complete`` once the last batch, the upstream's clean end,
    went out; a failure after that (written by the relay) spoils it."""

    __slots__ = ("parts", "complete")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.complete = False

    def add(self, data: bytes, last: bool) -> None:
        self.parts.append(data)
        self.complete = last

    def spoil(self) -> None:
        self.complete = False

    def body(self) -> bytes:
        return b"".join(self.parts)
