"""The provider adapter interface and the failures an adapter may raise.

An adapter turns an OpenAI-shaped request body into its upstream's wire format and the answer back
into the OpenAI shape. Failures are classified once, here, by what they allow: a
:class:`ProviderError` lets the fallback loop try the next target; :class:`UpstreamRejected` (the
client's request is at fault) ends the loop and goes back to the client as a 400.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.config import ProviderConfig
from providers.deadlines import Deadlines

#: the longest reason a failure carries out of an adapter (an upstream's message can be any length)
MAX_REASON = 300
REDACTED = "[redacted]"


class ProviderError(Exception):
    """A target failed in a way that allows the next target to be tried."""

    kind = "unavailable"
    retry_after: float | None = None

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        #: worth trying the same target again (a refused api_key is not)
        self.retryable = retryable


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` blanked out: an upstream may echo the credential it was sent (a proxy's
    "bad header 'Authorization: Bearer ...'"), and its words go on to the client and the log."""
    return text.replace(secret, REDACTED) if secret else text


class UpstreamUnavailable(ProviderError):
    """Unreachable, timed out, 5xx, or refused the gateway's own credentials."""


def stream_error(message: Any) -> UpstreamUnavailable:
    """The error event of an upstream's stream, its message whole: the provider blanks its credential
    out and cuts it (:meth:`Provider.scrubbed`) as the failure leaves the adapter."""
    return UpstreamUnavailable(f"error in stream: {message}")


class UpstreamRateLimited(ProviderError):
    kind = "rate_limited"

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class CoolingDown(ProviderError):
    """The target failed repeatedly and is skipped until its cooldown ends (it was not called)."""

    def __init__(self, seconds_left: float) -> None:
        super().__init__(f"cooling down after repeated failures ({seconds_left:.0f}s left)", retryable=False)
        self.retry_after = seconds_left


class UpstreamInvalid(ProviderError):
    """The upstream answered something that is not a valid answer of its API."""

    kind = "invalid"


class UpstreamRejected(Exception):
    """The upstream refused the request itself (400/413/422): the client's request is at fault."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


@dataclass(slots=True)
class StreamBatch:
    """The OpenAI-shaped chunks one upstream read completed; ``done`` when the stream finished."""

    chunks: list[dict[str, Any]]
    done: bool = False


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    created: int | None = None


class Provider(abc.ABC):
    """One configured upstream. ``endpoint`` is one of ``chat``, ``completions``, ``embeddings``."""

    #: endpoints this wire format can serve at all; the config may narrow them further
    capabilities: frozenset[str] = frozenset()

    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session
        #: the upstream's credential in clear, for request headers only: scrubbed from upstream error
        #: messages (providers.http.check_status, :meth:`scrubbed`), never logged
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
