"""``POST/GET/DELETE /mcp`` (and ``/``): the gateway as an MCP server, over MCP's Streamable HTTP transport.

One JSON-RPC message per POST (batches left the protocol in its 2025-06-18 revision: refused). A request
is answered as ``application/json``, or as ``text/event-stream`` when it asked for progress (a
``progressToken``) and the client accepts a stream: its progress notifications, then its answer. A
notification or a response is accepted with 202. ``initialize`` opens a session (``Mcp-Session-Id``);
every later message names it (gateway.mcp.sessions: any process that shares the signing key knows it).
``GET`` opens the session's stream of server-to-client messages: the lists' ``list_changed``
notifications, keep-alive comments between them; one stream per session at a time. ``DELETE`` ends the
session, and its stream.

Who may use it: the gate has authenticated the client; its strategy's ``mcp`` globs say what it sees.
A strategy without ``mcp`` (or a gateway without ``mcp_servers``) is refused with 403, in the OpenAI
error shape, before any MCP. Errors inside the protocol are JSON-RPC errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from aiohttp import hdrs, web
from aiohttp_apigami import docs

from gateway.api.answers import AUTH
from gateway.auth import discovery, overrides
from gateway.errors import AuthenticationFailed, NotFound, PermissionDenied, RateLimited, ServerShuttingDown
from gateway.firewall import APPROVALS_PAGE, Firewall, FirewallDenied, FirewallUnavailable
from gateway.keys import EXCHANGE, FIREWALL, LIVE, OBSERVER, PRINCIPAL, RATE_HEADERS, RUNTIME, SHUTDOWN
from gateway.mcp.sessions import Session, SharedUnavailable, Stream

if TYPE_CHECKING:
    from gateway.mcp.access import McpAccess
    from gateway.mcp.inbound import Inbound, Target

SESSION_HEADER = "Mcp-Session-Id"
VERSION_HEADER = "MCP-Protocol-Version"
# JSON-RPC's reserved codes, as the SDK names them (not imported: the SDK is loaded only with mcp_servers)
PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32602, -32603
#: a call the firewall refused (a rule, an admin, no decision in time, a secret in its arguments): one of the
#: codes JSON-RPC leaves to servers
FIREWALL_DENIED = -32003
_SSE = "text/event-stream"
#: seconds between keep-alive comments on a quiet GET stream (proxies close connections silent for long)
KEEPALIVE = 15.0

T = TypeVar("T")

_RPC = {"type": "object", "description": "A JSON-RPC 2.0 message"}
_OPENAI_ERROR = {"$ref": "#/components/schemas/Error"}


def _doc(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema or _RPC}}}


_REFUSED = {
    401: _doc(
        "Missing or invalid client secret or access token (`WWW-Authenticate` names the OAuth metadata)", _OPENAI_ERROR
    ),
    403: _doc("The client's strategy grants no MCP servers", _OPENAI_ERROR),
    404: _doc("No such session (initialize again); for `GET /`: no endpoint", _RPC),
}


def _rpc_error(
    status: int, rid: Any, code: int, message: str, headers: dict[str, str] | None = None, data: Any = None
) -> web.Response:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}
    if data is not None:
        body["error"]["data"] = data
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=headers)


def _answer(rid: Any, result: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    body = orjson.dumps({"jsonrpc": "2.0", "id": rid, "result": result})
    return web.Response(body=body, content_type="application/json", headers=headers)


def _access(request: web.Request) -> McpAccess:
    """What the client's strategy grants of this runtime's MCP servers, or 403 when it grants none."""
    runtime = request[RUNTIME]
    access = runtime.mcp_access.get(request[PRINCIPAL].policy.name)
    if runtime.mcp is None or access is None:
        raise PermissionDenied("This client's strategy grants no MCP servers (no 'mcp' entry).", code="mcp_not_allowed")
    return access


def _inbound(request: web.Request) -> Inbound:
    """The client's view of this runtime's MCP servers, or 403 when its strategy grants none."""
    access = _access(request)
    # imported here: the SDK is loaded (by the runtime) only when mcp_servers are configured
    from gateway.mcp.inbound import Inbound

    hub = request[RUNTIME].mcp
    assert hub is not None  # checked by _access
    return Inbound(hub, access.allows)


def _unavailable(rid: Any) -> web.Response:
    return _rpc_error(503, rid, INTERNAL_ERROR, "The session store is unavailable; retry the request")


async def _session(request: web.Request, rid: Any) -> Session | web.Response:
    """The session the message names, or the error answer: 400 without one, 404 for one unknown or over."""
    sid = request.headers.get(SESSION_HEADER)
    if not sid:
        return _rpc_error(400, rid, INVALID_REQUEST, f"Bad Request: the {SESSION_HEADER} header is required")
    try:
        session = await request.app[LIVE].mcp_sessions.find(
            sid, request[PRINCIPAL].client.name, request[RUNTIME].mcp_ids
        )
    except SharedUnavailable:
        return _unavailable(rid)
    if session is None:
        return _rpc_error(404, rid, INVALID_REQUEST, "Session not found: initialize a new one")
    version = request.headers.get(VERSION_HEADER)
    if version is not None and version != session.version:
        message = (
            f"Bad Request: {VERSION_HEADER} {version[:40]} does not match the negotiated version {session.version}"
        )
        return _rpc_error(400, rid, INVALID_REQUEST, message)
    return session


@docs(
    tags=["mcp"],
    summary="MCP (Streamable HTTP): one JSON-RPC message",
    description="`initialize` opens a session (`Mcp-Session-Id`), which every later message names.",
    security=AUTH,
    requestBody={"required": True, "content": {"application/json": {"schema": _RPC}}},
    produces=["application/json", _SSE],
    event_stream={"schema": {"type": "string", "description": "`notifications/progress` events, then the answer"}},
    responses={
        200: _doc("The JSON-RPC answer (a JSON-RPC error included)"),
        202: {"description": "A notification or a response, accepted"},
        400: _doc("Not one JSON-RPC message (a batch, say), or no session named"),
        429: _doc("A tool call over the client's rate limit (see Retry-After)"),
        **_REFUSED,
    },
)
async def post(request: web.Request) -> web.StreamResponse:
    inbound = _inbound(request)
    if request.content_type != "application/json":
        refused = "Unsupported Media Type: send the JSON-RPC message as Content-Type: application/json"
        return _rpc_error(415, None, INVALID_REQUEST, refused)
    try:
        message = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _rpc_error(400, None, PARSE_ERROR, "Parse error: the body is not JSON")
    if isinstance(message, list):
        return _rpc_error(400, None, INVALID_REQUEST, "Batches are not supported: send one JSON-RPC message per POST")
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return _rpc_error(400, None, INVALID_REQUEST, "Invalid Request: expected one JSON-RPC 2.0 object")
    rid, method = message.get("id"), message.get("method")
    if rid is not None and (not isinstance(rid, str | int) or isinstance(rid, bool)):
        return _rpc_error(400, None, INVALID_REQUEST, "Invalid Request: an id is a string or an integer")
    if rid is None and "id" in message and isinstance(method, str):  # a notification has no id at all
        return _rpc_error(400, None, INVALID_REQUEST, "Invalid Request: a request's id is never null (MCP)")
    if not isinstance(method, str):  # a response to a request the gateway never sends
        return web.Response(status=202)
    if method == "initialize" and rid is not None:
        return await _initialize(request, rid, message.get("params"))
    found = await _session(request, rid)
    if isinstance(found, web.Response):
        return found
    if rid is None:
        await _notified(request, found, method, message.get("params"))
        return web.Response(status=202)
    return await _request(request, inbound, found, rid, method, message.get("params"))


async def _initialize(request: web.Request, rid: Any, params: Any) -> web.Response:
    from gateway.mcp.inbound import McpUpstreamError, initialized, negotiate, parse

    try:
        parsed = parse("initialize", params)
    except McpUpstreamError as exc:
        return _rpc_error(200, rid, exc.code, exc.message)
    version = negotiate(parsed.params.protocol_version)
    try:
        session = await request.app[LIVE].mcp_sessions.open(
            request[PRINCIPAL].client.name, version, request[RUNTIME].mcp_ids
        )
    except SharedUnavailable:
        return _unavailable(rid)
    return _answer(rid, initialized(version), {SESSION_HEADER: session.id})


async def _notified(request: web.Request, session: Session, method: str, params: Any) -> None:
    """A notification: only a cancellation asks for anything (of the call it names, if still running or
    held: held on another process, with Redis, it is cancelled through the approvals store)."""
    if method != "notifications/cancelled" or not isinstance(params, dict):
        return
    rid = params.get("requestId")
    if not isinstance(rid, str | int) or session.cancel(rid):
        return
    principal = request[PRINCIPAL]
    if principal.policy.firewall:
        await request.app[FIREWALL].cancel(principal.client.name, _held_call(session, rid))


def _held_call(session: Session, rid: str | int) -> str:
    """What names a call held for an admin, for its cancellation on any process: a digest (the store need not
    keep the session's id)."""
    return hashlib.sha256(f"{session.id}|{rid!r}".encode()).hexdigest()[:32]


async def _request(
    request: web.Request, inbound: Inbound, session: Session, rid: Any, method: str, params: Any
) -> web.StreamResponse:
    from gateway.mcp.inbound import CALLS, McpUpstreamError, parse, progress_token

    try:
        parsed = parse(method, params if isinstance(params, dict) else None)
    except McpUpstreamError as exc:
        x = request[EXCHANGE]  # recorded as what it is; the answer stays a JSON-RPC error
        x.status, x.error_code = (400, "invalid_params") if exc.code == INVALID_PARAMS else (404, "method_not_found")
        return _rpc_error(200, rid, exc.code, exc.message)
    call = _Call(request, inbound, parsed, await inbound.target(parsed)) if method in CALLS else None
    if method == "tools/call":
        refused = await _admit(request, rid)
        if refused is not None:
            if call is not None:
                call.refused(429, "rate_limited")
            return refused
    if call is not None and request[PRINCIPAL].policy.screened:
        try:  # a call held for an admin is cancellable as a running one is (notifications/cancelled)
            refused = await _run(session, rid, _screen(request, inbound, session, rid, parsed, call))
        except McpUpstreamError as exc:  # cancelled while held: it never reaches a server
            call.refused(499, "cancelled")
            request[EXCHANGE].error_code = "cancelled"
            return _rpc_error(200, rid, exc.code, exc.message)
        if refused is not None:
            call.refused(refused.status if refused.status != 200 else 403, "refused")
            return refused
    if call is not None:
        call.start()
    token = progress_token(parsed)
    if token is not None and _SSE in request.headers.get(hdrs.ACCEPT, ""):
        return await _streamed(request, inbound, session, rid, parsed, token, call)
    try:
        result = await _run(session, rid, inbound.answer(parsed))
    except McpUpstreamError as exc:
        if call is not None:
            call.done(exc)
        return _rpc_error(200, rid, exc.code, exc.message)
    if call is not None:
        call.done(result)
    return _answer(rid, result)


async def _admit(request: web.Request, rid: Any) -> web.Response | None:
    """A tool call counts against the client's ``requests`` limits, as an inference request does."""
    principal = request[PRINCIPAL]
    if not principal.policy.limits:
        return None
    try:
        request[RATE_HEADERS] = await request.app[LIVE].limiter.admit(principal.client.name, principal.policy.limits)
    except RateLimited as exc:
        request[EXCHANGE].error_code = exc.code
        return _rpc_error(429, rid, INVALID_REQUEST, exc.message, exc.headers)
    return None


async def _screen(
    request: web.Request, inbound: Inbound, session: Session, rid: Any, parsed: Any, call: _Call
) -> web.Response | None:
    """The call scanned for secrets (first: a call its secret refuses is never held); then the firewall's
    rules on the item (one this client may call), which may hold the call for an admin's decision."""
    principal, config, firewall = request[PRINCIPAL], request[RUNTIME].config, request.app[FIREWALL]
    client, server = principal.client.name, call.target.server
    try:
        if config.firewall.secrets != "off":
            _scan(firewall, client, config.firewall.secrets, parsed, call)
        if principal.policy.firewall and server is not None:
            item = call.target.item if not call.resource else f"{server}__{call.target.item}"
            name = item.partition("__")[2]
            if inbound.allows(server, call.target.item if call.resource else name):
                link = discovery.base_url(request, request.app[OBSERVER].trusted) + APPROVALS_PAGE
                held = _held_call(session, rid)
                await firewall.judge_item(client, principal.policy.firewall, item, config, link, held)
    except FirewallDenied as exc:
        request[EXCHANGE].error_code = exc.code
        return _rpc_error(200, rid, FIREWALL_DENIED, exc.message, data={"code": exc.code})
    except FirewallUnavailable as exc:  # a call a rule asks about, and the approvals store is down (Redis)
        request[EXCHANGE].error_code = exc.code
        return _rpc_error(503, rid, INTERNAL_ERROR, exc.message, exc.headers, data={"code": exc.code})
    except ServerShuttingDown as exc:  # held when the shutdown began
        request[EXCHANGE].error_code = exc.code
        return _rpc_error(503, rid, INTERNAL_ERROR, exc.message, data={"code": exc.code})
    return None


def _scan(firewall: Firewall, client: str, mode: str, parsed: Any, call: _Call) -> None:
    """The call's name (a resource's URI) and arguments scanned for secrets. A secret in the name or URI is
    refused under ``redact`` as under ``block`` (rewritten, it would name another item); under ``log`` the
    call goes on, and the logs, records and spans name it without the secret."""
    key = "uri" if call.resource else "name"
    named = {key: call.target.item}
    try:
        try:
            if firewall.scan(client, "block" if mode == "redact" else mode, named, (key,)):
                named = firewall.redacted(named, (key,))
        finally:  # refused, the name was redacted in place
            call.named(named[key])
        arguments = getattr(parsed.params, "arguments", None)
        if arguments:
            firewall.scan(client, mode, {"arguments": arguments}, ("arguments",))
    finally:  # the access log's copy of the call (logging.bodies), taken before the scan
        if call.x.request_body is not None:
            call.x.request_body = firewall.redacted(call.x.request_body, ("arguments", key))


async def _run(session: Session, rid: Any, work: Awaitable[T]) -> T:
    """Run a request (or its wait for an admin) as a task a ``notifications/cancelled`` can cancel;
    cancelled so, it is an error."""
    from gateway.mcp.inbound import REQUEST_CANCELLED, McpUpstreamError

    task: asyncio.Task[T] = asyncio.ensure_future(work)
    session.calls[rid] = task
    try:
        return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # this request itself is being cancelled (the client went away): not the call alone
        raise McpUpstreamError(REQUEST_CANCELLED, "Request cancelled by the client") from None
    finally:
        if session.calls.get(rid) is task:
            del session.calls[rid]


async def _streamed(
    request: web.Request, inbound: Inbound, session: Session, rid: Any, parsed: Any, token: Any, call: _Call | None
) -> web.StreamResponse:
    """The answer as an SSE stream: the call's progress notifications as they come, then its answer."""
    from gateway.mcp.inbound import McpUpstreamError, progress_note

    response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: _SSE, hdrs.CACHE_CONTROL: "no-cache"})
    await response.prepare(request)

    async def relay(progress: float, total: float | None, message: str | None) -> None:
        try:
            await response.write(_event(progress_note(token, progress, total, message)))
        except ConnectionResetError:  # the client left: aiohttp cancels this request, and the call with it
            pass

    try:
        result = await _run(session, rid, inbound.answer(parsed, relay))
        doc: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "result": result}
        outcome: Any = result
    except McpUpstreamError as exc:
        doc = {"jsonrpc": "2.0", "id": rid, "error": {"code": exc.code, "message": exc.message}}
        outcome = exc
    if call is not None:
        call.done(outcome)
    await response.write(_event(doc))
    await response.write_eof()
    return response


def _event(doc: dict[str, Any]) -> bytes:
    return b"event: message\ndata: " + orjson.dumps(doc) + b"\n\n"


class _Call:
    """What the logs, metrics and usage records say of one call to an upstream item (on the exchange)."""

    def __init__(self, request: web.Request, inbound: Inbound, parsed: Any, target: Target) -> None:
        self.x = request[EXCHANGE]
        self.inbound, self.target = inbound, target
        self.resource = parsed.method == "resources/read"
        self.x.model_requested = self.target.item
        self.method = parsed.method
        self.span: Any = None
        self.began = 0.0
        if request.app[OBSERVER].bodies:
            self.x.request_body = parsed.params.model_dump(by_alias=True, mode="json", exclude_none=True)

    def named(self, shown: str) -> None:
        """The name (or URI) the records show: without a secret it held."""
        if shown != self.target.item:
            self.target = replace(self.target, item=shown)
            self.x.model_requested = shown

    def start(self) -> None:
        """The call's own span, when tracing is on: from here (admitted) to its answer."""
        if self.x.tracing is not None:
            self.began = time.perf_counter()
            self.span = self.x.tracing.mcp_call(self.x, self.method, self.target.server, self.target.item)

    def refused(self, status: int, word: str) -> None:
        """Refused before any upstream was asked (a rate limit, the firewall): recorded with that status, its
        error code as the refusal set it, and no server."""
        self.x.status = status
        self.x.mcp = (None, "other", word)
        if self.span is not None:
            from gateway.observability.tracing import mcp_done

            mcp_done(self.span, word, self.began)

    def done(self, outcome: Any) -> None:
        from gateway.mcp.inbound import call_status, reached

        self.x.status, status = call_status(outcome)  # recorded; the HTTP answer stays a JSON-RPC one
        server = self.target.server if reached(outcome) else None
        # a name is a label only once its server listed it and answered it with a result: a client cannot
        # mint new series by calling made-up names (a server may answer any name), and a resource's URI (a
        # template's, say) is never one
        known = status == "ok" and server is not None and not self.resource and self.inbound.listed(self.target)
        self.x.mcp = (server, self.target.item if known else "other", status)
        if status != "ok":
            self.x.error_code = status
        if self.span is not None:
            from gateway.observability.tracing import mcp_done

            mcp_done(self.span, status, self.began)


@docs(
    tags=["mcp"],
    summary="MCP: the server-to-client stream",
    description="`notifications/{tools,prompts,resources}/list_changed`, and keep-alive comments between them.",
    security=AUTH,
    produces=[_SSE],
    responses={
        200: {"description": "The stream", "content": {_SSE: {"schema": {"type": "string"}}}},
        400: _doc("No session named"),
        406: _doc("`Accept` does not allow `text/event-stream`"),
        409: _doc("The session has a stream open already"),
        **_REFUSED,
    },
)
async def get(request: web.Request) -> web.StreamResponse:
    """A plain ``GET /`` (no stream asked for) stays the unknown endpoint it was."""
    streaming = _SSE in request.headers.get(hdrs.ACCEPT, "")
    if request.path.rstrip("/") in ("", "/v1") and not streaming:
        raise NotFound(f"Unknown endpoint: GET {request.path}")
    access = _access(request)
    if not streaming:
        return _rpc_error(406, None, INVALID_REQUEST, f"Not Acceptable: the client must accept {_SSE}")
    found = await _session(request, None)
    if isinstance(found, web.Response):
        return found
    if found.stream is not None:
        return _rpc_error(409, None, INVALID_REQUEST, "Conflict: only one SSE stream is allowed per session")
    sessions = request.app[LIVE].mcp_sessions
    if sessions.closing:
        raise ServerShuttingDown("The server is shutting down; retry the request.")
    stream = found.stream = Stream(access.sees)
    try:
        return await _stream(request, found, stream)
    finally:
        if found.stream is stream:
            found.stream = None


async def _stream(request: web.Request, session: Session, stream: Stream) -> web.StreamResponse:
    """Until the session or the stream ends (DELETE, expiry, a reload, the shutdown) or the client leaves."""
    sessions = request.app[LIVE].mcp_sessions
    headers = {hdrs.CONTENT_TYPE: _SSE, hdrs.CACHE_CONTROL: "no-cache", "X-Accel-Buffering": "no"}
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    try:
        while (methods := await stream.next(KEEPALIVE)) is not None:
            if methods:
                await response.write(b"".join(_event({"jsonrpc": "2.0", "method": m}) for m in methods))
            elif _barred(request) or not await sessions.alive(session):
                break
            else:
                await response.write(b": keep-alive\n\n")
    except SharedUnavailable:
        pass  # refused (state.fail_closed): the client's next GET gets the 503
    except asyncio.CancelledError:
        if not request.app[SHUTDOWN].over:  # the client went away
            raise
    await response.write_eof()
    return response


def _barred(request: web.Request) -> bool:
    """Whether the stream's client was suspended (on any process) or disabled since the stream opened."""
    try:
        overrides.check(request[PRINCIPAL].client, request.app[LIVE].overrides)
    except AuthenticationFailed:
        return True
    return False


@docs(
    tags=["mcp"],
    summary="MCP: end the session",
    security=AUTH,
    responses={204: {"description": "The session is over"}, 400: _doc("No session named"), **_REFUSED},
)
async def delete(request: web.Request) -> web.StreamResponse:
    _access(request)
    found = await _session(request, None)
    if isinstance(found, web.Response):
        return found
    try:
        await request.app[LIVE].mcp_sessions.close(found)
    except SharedUnavailable:
        return _unavailable(None)
    return web.Response(status=204)
