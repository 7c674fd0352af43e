"""The provider adapter interface. An adapter turns an OpenAI-shaped request body into its upstream's
wire format and the answer back into the OpenAI shape; the failures it may raise are in
:mod:`providers.failures` (re-exported here). Streams are read by one loop for every adapter
(:meth:`Provider.infer_stream`): an adapter says how to ask for its stream and how to read one event."""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, Mapping
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
from providers.transport import http, sse
from providers.transport.deadlines import Deadlines

__all__ = [
    "MAX_REASON",
    "REDACTED",
    "CoolingDown",
    "ModelInfo",
    "Provider",
    "ProviderError",
    "StreamBatch",
    "StreamParser",
    "UpstreamInvalid",
    "UpstreamRateLimited",
    "UpstreamRejected",
    "UpstreamUnavailable",
    "WireFormat",
    "redact",
    "stream_error",
]


@dataclass(slots=True)
class StreamBatch:
    """The OpenAI-shaped chunks one upstream read completed; ``done`` when the stream finished."""

    chunks: list[dict[str, Any]]
    done: bool = False


class StreamParser(abc.ABC):
    """One upstream stream's state: each event's data in, the OpenAI chunks it stands for out."""

    __slots__ = ()

    @abc.abstractmethod
    def take(self, data: bytes, out: list[dict[str, Any]]) -> bool:
        """Append the chunks of one event's ``data`` to ``out``; True at the upstream's end of the answer
        (nothing after it is read). Raise :class:`ProviderError` for an error event or a malformed one,
        where the part at fault is read; anything else it raises is a bug of the gateway's."""

    def end(self) -> list[dict[str, Any]]:
        """The chunks that close the answer when the upstream's body ends before :meth:`take` said so.
        By default that stream was cut short. A format without an end event overrides this."""
        raise UpstreamInvalid("stream ended before its end event")


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
    """One configured upstream. ``endpoint`` is one of ``chat``, ``completions``, ``embeddings`` (and
    ``responses`` for the adapters whose upstreams may serve OpenAI's Responses API)."""

    #: endpoints this wire format can serve at all; the config may narrow them further
    capabilities: frozenset[str] = frozenset()
    #: how the upstream frames its stream: "sse" (Server-Sent Events) or "ndjson" (a JSON object a line)
    stream_format = "sse"

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
    def stream_request(self, endpoint: str, body: dict[str, Any], model: str) -> tuple[str, bytes, Mapping[str, str]]:
        """The URL, body and headers that ask the upstream's ``model`` for ``body``'s answer as a stream;
        raises :class:`UpstreamRejected` (400) for what the upstream cannot honour."""

    @abc.abstractmethod
    def stream_parser(self, model: str) -> StreamParser:
        """The parser for one stream of ``model`` (one that keeps no state may serve every stream)."""

    def infer_stream(self, endpoint: str, body: dict[str, Any], model: str) -> AsyncGenerator[StreamBatch, None]:
        """The answer as batches of chunks, one per upstream read, so the relay writes once per read.

        Raises before the first batch if the upstream fails early; the last batch says ``done``,
        and a stream that ends without finishing raises instead of just stopping. A failure leaves with
        the upstream's credential scrubbed from it.
        """
        url, payload, headers = self.stream_request(endpoint, body, model)
        return self.read_stream(url, payload, headers, self.stream_parser(model))

    async def read_stream(
        self, url: str, payload: bytes, headers: Mapping[str, str], parser: StreamParser
    ) -> AsyncGenerator[StreamBatch, None]:
        """The batches ``parser`` reads from the stream that POSTing ``payload`` to ``url`` answers
        (:meth:`infer_stream`'s loop, for an endpoint whose events are not chat chunks)."""
        resp, ends_at = await http.send(self, url, payload, headers)
        reader = (sse.EventReader if self.stream_format == "sse" else sse.LineReader)(
            resp, self.config.timeouts.idle, ends_at
        )
        try:
            await http.check_status(resp, self.secret)
            ctype = resp.content_type
            if self.stream_format == "sse" and ctype != "text/event-stream":  # NDJSON comes under several names
                raise UpstreamInvalid(f"expected an event stream, got {ctype or 'no content type'}")
            while (events := await reader.batch()) is not None:
                batch, failure = _batch(parser, events)
                if batch.chunks or batch.done:
                    yield batch  # what arrived intact goes out before any failure behind it
                if failure is not None:
                    raise self.scrubbed(failure)
                if batch.done:
                    return
            last = parser.end()
        finally:
            reader.close()
            resp.release()
        yield StreamBatch(last, done=True)


def _batch(parser: StreamParser, events: list[bytes]) -> tuple[StreamBatch, ProviderError | None]:
    """The chunks of one read up to the end of the answer or the first bad event, and the failure if any."""
    batch = StreamBatch([])
    chunks = batch.chunks
    for data in events:
        try:
            if parser.take(data, chunks):
                batch.done = True
                break
        except ProviderError as exc:  # an error event, or a malformed one (read where it is parsed)
            return batch, exc
    return batch, None
