"""The gateway's one exception hierarchy and its OpenAI-shaped renderer.

Every error a client can see is a :class:`GatewayError`: it carries the HTTP status, the OpenAI
``type`` and ``code``, and optionally the ``param`` at fault and extra response headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson


class GatewayError(Exception):
    """Base of every error the gateway answers with."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    code: str | None = None  # a class's default; an instance may carry its own

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class Conflict(GatewayError):
    """The request contradicts the state it would change (an admin suspending their own client)."""

    status = 409
    type = "invalid_request_error"
    code = "conflict"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class RequestTimeout(GatewayError):
    """The request's headers or body did not arrive in time; the connection closes after this answer."""

    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class UnsupportedMediaType(GatewayError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class InternalError(GatewayError):
    status = 500
    type = "server_error"
    code = "internal_error"


class UpstreamInvalidResponse(GatewayError):
    status = 502
    type = "upstream_error"
    code = "upstream_invalid_response"


class AllProvidersFailed(GatewayError):
    status = 503
    type = "upstream_error"
    code = "all_providers_failed"


class StoreUnavailable(GatewayError):
    """The database of stored responses or usage records cannot be reached now (``usage.backend``)."""

    status = 503
    type = "server_error"
    code = "store_unavailable"


class ServerShuttingDown(GatewayError):
    """Still running when the shutdown's deadline came (``server.shutdown_timeout``)."""

    status = 503
    type = "server_error"
    code = "server_shutting_down"


_BY_STATUS: dict[int, type[GatewayError]] = {
    cls.status: cls
    for cls in (
        InvalidRequest,
        AuthenticationFailed,
        PermissionDenied,
        NotFound,
        MethodNotAllowed,
        RequestTimeout,
        PayloadTooLarge,
        UnsupportedMediaType,
        RateLimited,
        InternalError,
        UpstreamInvalidResponse,
        AllProvidersFailed,
    )
}


def for_status(status: int, message: str, **kwargs: Any) -> GatewayError:
    """An error of the class that matches an HTTP status (aiohttp's own 404/405/413, ...)."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = InvalidRequest if 400 <= status < 500 else InternalError
        err = cls(message, **kwargs)
        err.status = status  # type: ignore[misc]
        return err
    return cls(message, **kwargs)


def body_framing_error() -> InvalidRequest:
    """A request body that broke its Content-Length, chunked or content encoding while it was read (the
    connection closes after the answer: where the next request would start is unknown)."""
    return InvalidRequest(
        "The request body does not match its framing (Content-Length, chunked or content encoding).",
        code="invalid_body_framing",
        headers={"Connection": "close"},
    )


def render_bytes(err: GatewayError) -> bytes:
    return orjson.dumps(err.body())
