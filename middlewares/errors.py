"""The outermost layer: whatever goes wrong below becomes one error answer, in the shape of the route's
dialect: OpenAI's ``{"error": {message, type, param, code}}``, or Anthropic's ``{"type": "error",
"error": {type, message}}`` on the Messages API's routes."""

from __future__ import annotations

import logging

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from gateway import jsonx
from gateway.auth import discovery
from gateway.dialects import messages_reply
from gateway.errors import GatewayError, InternalError, body_framing_error, for_status, render_bytes
from gateway.keys import CONFIG, EXCHANGE, OBSERVER, ROUTE, SHUTDOWN

log = logging.getLogger("localrouter.errors")

_PASSED_HEADERS = ("Allow", "Retry-After")
CLIENT_CLOSED = 499


def render(err: GatewayError, dialect: str = "openai", request_id: str | None = None) -> web.Response:
    if dialect == "anthropic":
        body = jsonx.dumps(messages_reply.error_body(err.status, err.message, request_id))
    else:
        body = render_bytes(err)
    return web.Response(body=body, status=err.status, content_type="application/json", headers=err.headers)


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> GatewayError:
    path = request.path if len(request.path) <= 200 else request.path[:200] + "..."
    if exc.status == 404:
        message = f"Unknown endpoint: {request.method} {path}"
    elif exc.status == 405:
        message = f"Method {request.method} is not allowed on {path}"
    elif exc.status == 413:
        limit = request.app[CONFIG].server.max_body_bytes
        message = f"Request body too large (limit {limit} bytes)"
    else:
        message = exc.reason
    headers = {h: exc.headers[h] for h in _PASSED_HEADERS if h in exc.headers}
    return for_status(exc.status, message, headers=headers)


def _answer(request: web.Request, err: GatewayError) -> web.Response:
    """The error answer, its message ending with the request id (as OpenAI's do), its code noted."""
    x = request.get(EXCHANGE)
    if x is not None:
        x.error_code = err.code
        err.message = f"{err.message} (request id: {x.id})"
    route = request.get(ROUTE)
    if err.status == 401 and route is not None and route.endpoint == "mcp":  # MCP clients discover OAuth so
        base = discovery.base_url(request, request.app[OBSERVER].trusted)
        sent = hdrs.AUTHORIZATION in request.headers or "x-api-key" in request.headers
        err.headers["WWW-Authenticate"] = discovery.challenge(base, request.path, sent)
    return render(err, route.dialect if route is not None else "openai", x.id if x is not None else None)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        async with request.app[SHUTDOWN].bound():  # still running at the shutdown's deadline: ended, in words
            return await handler(request)
    except GatewayError as err:
        return _answer(request, err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _answer(request, _from_http_exception(request, exc))
    except web.RequestPayloadError:
        return _answer(request, body_framing_error())
    except ConnectionError:
        # the client went away; nobody will read an answer (499: nginx's "client closed request")
        log.info("client disconnected during %s %s", request.method, request.path)
        return web.Response(status=CLIENT_CLOSED)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _answer(request, InternalError("The server had an error while processing your request."))
