"""The provider adapter interface. An adapter turns an OpenAI-shaped request body into its upstream's
wire format and the answer back into the OpenAI shape; the failures it may raise are in
:mod:`providers.failures` (re-exported here)."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.config import ProviderConfig, TypeOptions
from providers.failures import (
    MAX_REASON,
    REDACTED,
    CoolingDown,
    ProviderError,
    UpstreamInvalid,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
    redact,
    stream_error,
)
from providers.transport.deadlines import Deadlines

__all__ = [
    "MAX_REASON",
    "REDACTED",
    "CoolingDown",
    "ModelInfo",
    "Provider",
    "ProviderError",
    "StreamBatch",
    "UpstreamInvalid",
    "UpstreamRateLimited",
    "UpstreamRejected",
    "UpstreamUnavailable",
    "WireFormat",
    "redact",
    "stream_error",
]

#: the longest reason a failure carries out of an adapter (an upstream's message can be any length)


@dataclass(slots=True)
class StreamBatch:
    """The OpenAI-shaped chunks one upstream read completed; ``done`` when the stream finished."""

    chunks: list[dict[str, Any]]
    done: bool = False


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    created: int | None = None


@dataclass(frozen=True)
class WireFormat:
    """One upstream wire format, declared once, in its adapter's module: what the config reader needs
    (a :class:`gateway.config.ProviderType`) and what the runtime builds. :mod:`providers.registry`
    gathers them."""

    name: str  # the provider's ``type`` in the YAML
    adapter: type[Provider]
    #: None: ``base_url`` is required. Written the way the provider's own SDK takes it
    default_base_url: str | None = None
    options: type[TypeOptions] | None = None  # the keys only this type takes

    @property
    def capabilities(self) -> frozenset[str]:
        return self.adapter.capabilities


class Provider(abc.ABC):
    """One configured upstream. ``endpoint`` is one of ``chat``, ``completions``, ``embeddings``."""

    #: endpoints this wire format can serve at all; the config may narrow them further
    capabilities: frozenset[str] = frozenset()

    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session
        #: the upstream's credential in clear, for request headers only: scrubbed from upstream error
        #: messages (providers.transport.http.check_status, :meth:`scrubbed`), never logged
        self.secret = config.api_key.reveal() if config.api_key is not None else None
        self.deadlines = Deadlines()  # the time limits of this provider's calls in flight
        # aiohttp keeps only the connect timeout: every other limit is the deadlines' or a stream reader's.
        # `connect` includes the wait for a free connection in the provider's pool: a pool that a hung
        # upstream holds full fails this target soon, so the next one is tried
        self.client_timeout = aiohttp.ClientTimeout(total=None, connect=config.timeouts.connect)
        self._serves = self.capabilities & frozenset(config.endpoints)

    def scrubbed(self, exc: ProviderError) -> ProviderError:
        """``exc`` fit to leave this provider: its reason (which may quote the upstream) with the
        credential blanked out, then cut to :data:`MAX_REASON`. Blanked before the cut, so that no
        piece of the credential survives at the end of a cut message."""
        exc.reason = redact(exc.reason, self.secret)[:MAX_REASON]
        exc.args = (exc.reason,)
        return exc

    def supports(self, endpoint: str) -> bool:
        return endpoint in self._serves

    @abc.abstractmethod
    async def list_models(self) -> list[ModelInfo]:
        """The upstream's models; raises :class:`ProviderError` when it cannot tell."""

    @abc.abstractmethod
    async def infer(self, endpoint: str, body: dict[str, Any], model: str) -> dict[str, Any]:
        """One OpenAI-shaped answer for ``body`` sent to the upstream's ``model``."""

    @abc.abstractmethod
    def infer_stream(self, endpoint: str, body: dict[str, Any], model: str) -> AsyncIterator[StreamBatch]:
        """The answer as batches of chunks, one per upstream read, so the relay writes once per read.

        Raises before the first batch if the upstream fails early; the last batch says ``done``,
        and a stream that ends without finishing raises instead of just stopping.
        """
