"""The failures an adapter may raise, classified once, here, by what they allow: a :class:`ProviderError`
lets the fallback loop try the next target; :class:`UpstreamRejected` (the client's request is at fault)
ends the loop and goes back to the client as a 400."""

from __future__ import annotations

from typing import Any

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
