"""One client connection: what is refused before the app runs, and how long a request may take to arrive.

aiohttp answers a request it cannot parse (a line too long, too many headers, broken framing) on its own,
in plain text, and logs the parser's message, which quotes the bytes at fault: a secret in an oversized
``Authorization`` header included. Here those answers are the gateway's OpenAI-shaped errors with the
headers every answer carries, and the log line names the kind of refusal, never the bytes.

aiohttp bounds neither how long a request's headers nor its body may take to arrive.
``server.header_timeout`` runs from a request's first byte (or the connection's opening) to the end of its
headers, ``server.body_timeout`` from there to the end of its body; either way the client gets a 408 and the
connection closes. Idleness between requests is the keep-alive timeout's business: a proxy's pooled
connection must not be closed under it. So a connection that sends one whole request and the start of
another in one packet, then nothing, waits out the keep-alive timeout like any idle connection.

This leans on aiohttp's protocol internals (its queue of parsed messages and the waiter ``start`` sleeps
on, used the way its own parser-error path uses them); ``tests/gateway/test_connection.py`` holds it to
them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import hdrs, web, web_protocol
from aiohttp.http_exceptions import (
    BadStatusLine,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    PayloadEncodingError,
)
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader

from gateway.config import ServerConfig
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    RequestTimeout,
    body_framing_error,
    for_status,
    render_bytes,
)
from gateway.keys import OBSERVER
from gateway.observability.exchange import Ids

log = logging.getLogger("localrouter.connection")

# The parser's own messages quote the bytes at fault; an answer says only what kind of thing is wrong.
_REFUSALS: tuple[tuple[type[HttpProcessingError], str, str], ...] = (
    (InvalidHeader, "invalid_header", "A request header is not valid HTTP."),
    (BadStatusLine, "invalid_request_line", "The request line is not valid HTTP/1.1."),
    (InvalidURLError, "invalid_url", "The request target is not a valid URL."),
)
_CLOSE: dict[str, str] = {hdrs.CONNECTION: "close"}


def runner(app: web.Application, server: ServerConfig, **kwargs: Any) -> web.AppRunner:
    """The app's runner, its connections served by :class:`Connection`."""
    return _Runner(
        app,
        handler_cancellation=True,
        access_log=None,
        header_timeout=server.header_timeout,
        body_timeout=server.body_timeout,
        ids=app[OBSERVER].ids,
        **kwargs,
    )


class Connection(web_protocol.RequestHandler):
    """aiohttp's protocol, with the gateway's refusals and the header and body timeouts."""

    __slots__ = ("_header_timeout", "_body_timeout", "_ids", "_timer", "_body", "_received", "_late")

    def __init__(
        self, manager: web.Server, *, header_timeout: float, body_timeout: float, ids: Ids, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._ids = ids  # the app's: a refusal's id is like any request's
        self._header_timeout = header_timeout
        self._body_timeout = body_timeout
        self._timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None  # the body being received, while it is
        self._received = False  # any byte at all on this connection
        self._late = False  # a request came too late or broke its framing: nothing more is read

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm(self._header_timeout, self._headers_late)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._late:
            return
        in_body = self._body is not None
        count = self._request_count
        super().data_received(data)
        self._received = self._received or bool(data)
        if in_body and self._body is not None:
            self._body_progressed(self._body)
        if self._request_count != count:
            self._message_parsed()
        elif data and not in_body and self._timer is None:
            self._arm(self._header_timeout, self._headers_late)  # a request has begun; its headers are not all here

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        if self._body is not None and request.content is self._body:
            self._disarm()  # answered: the rest of the body is only drained, for aiohttp's lingering time
        return await super().finish_response(request, resp, start_time)

    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        """The answer to a request refused before the app (or to an error the app let escape)."""
        request_id = self._ids.new()
        err = self._refusal(exc, status)
        if isinstance(exc, (HttpProcessingError, RequestTimeout)):
            log.info(
                "refused a request from %s before the app: %d %s (%s)", request.remote, err.status, err.code, request_id
            )
        else:
            log.error("unhandled error (%s)", request_id, exc_info=exc)
        if request.writer.output_size > 0:
            raise ConnectionError("the answer has begun; no error answer can follow")
        err.message = f"{err.message} (request id: {request_id})"
        response = web.Response(
            body=render_bytes(err),
            status=err.status,
            content_type="application/json",
            headers={
                **err.headers,
                hdrs.X_CONTENT_TYPE_OPTIONS: "nosniff",
                hdrs.CACHE_CONTROL: "no-store",
                hdrs.X_REQUEST_ID: request_id,
            },
        )
        response.force_close()
        return response

    def _refusal(self, exc: BaseException | None, status: int) -> GatewayError:
        if isinstance(exc, GatewayError):
            return exc
        if isinstance(exc, PayloadEncodingError):
            return body_framing_error()
        if isinstance(exc, LineTooLong):
            return InvalidRequest(
                f"The request line or a header field is longer than {self.max_field_size} bytes.", code="line_too_long"
            )
        for kind, code, text in _REFUSALS:
            if isinstance(exc, kind):
                return InvalidRequest(text, code=code)
        if isinstance(exc, HttpProcessingError):
            return InvalidRequest(
                "The request is not valid HTTP/1.1 (a malformed header or framing, or more "
                f"than {self.max_headers} headers).",
                code="malformed_request",
            )
        return for_status(status, "The server had an error while processing your request.")

    def _message_parsed(self) -> None:
        """A request's headers are complete (or the parser gave up on it): its body's time starts."""
        self._disarm()
        if not self._messages:
            return
        message, payload = self._messages[-1]
        if self._body is not None and isinstance(message, web_protocol._ErrInfo):
            self._fail_body(body_framing_error())
        elif not payload.is_eof():
            self._body = payload
            self._arm(self._body_timeout, self._body_late)

    def _body_progressed(self, body: StreamReader) -> None:
        if body.exception() is not None:
            self._fail_body(None)  # the parser gave up on it: the app's read fails, and answers
        elif body.is_eof():
            self._body = None
            self._disarm()

    def _headers_late(self) -> None:
        self._timer = None
        if not self._received:
            self.force_close()  # opened and never used: nobody to answer
            return
        self._late = True
        err = RequestTimeout("The request headers did not arrive in time.")
        # answered like a request the parser refused, in turn after those already queued
        self._messages.append((web_protocol._ErrInfo(status=err.status, exc=err, message=err.message), EMPTY_PAYLOAD))
        self._request_count += 1
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _body_late(self) -> None:
        self._timer = None
        self._fail_body(RequestTimeout("The request body did not arrive in time.", headers=_CLOSE))

    def _fail_body(self, err: GatewayError | None) -> None:
        """The app's read of the body fails (with ``err``, unless it already has); the app answers, then the
        connection closes."""
        body, self._body = self._body, None
        self._disarm()
        if body is None or body.is_eof():
            return
        self._late = True
        if err is not None:
            body.set_exception(err)
        body.feed_eof()  # so aiohttp does not wait for the rest of it after the answer
        self.close()

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._timer = self._loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Server(web.Server):
    def __call__(self) -> Connection:
        return Connection(self, loop=self._loop, **self._kwargs)


class _Runner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return _Server(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            **made._kwargs,
        )
