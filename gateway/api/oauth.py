"""``POST /oauth/token``: the client credentials grant (RFC 6749 section 4.4), errors in its shape.

Credentials come as a form body (what OAuth clients send), a JSON body, or HTTP Basic; a client_id
that keeps failing is throttled. The access token is signed (see gateway.auth.tokens), never stored.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import math
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from aiohttp import web
from aiohttp_apigami import docs

from gateway import jsonx
from gateway.keys import LIVE, RUNTIME
from gateway.limits.windows import Check, State, StateUnavailable

log = logging.getLogger("localrouter.oauth")

GRANT = "client_credentials"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str, headers: dict[str, str] | None = None):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description
        self.headers = headers or {}

    def response(self) -> web.Response:
        body = {"error": self.error, "error_description": self.description}
        return web.Response(
            body=jsonx.dumps(body),
            status=self.status,
            content_type="application/json",
            headers={**_NO_STORE, **self.headers},
        )


class Throttle:
    """Failures per client_id, counted in the shared state so that every replica agrees: after
    ``LIMIT`` failures within ``WINDOW`` seconds the client_id waits. If the state backend is down,
    the throttle is skipped (the secret check itself still holds)."""

    LIMIT, WINDOW = 5, 60.0

    def __init__(self, state: State, client_id: str) -> None:
        self._state = state
        self._key = "oauth-failures:" + client_id[:200]

    async def wait(self) -> int | None:
        try:
            admitted, (reading,) = await self._state.admit([Check(self._key, self.WINDOW, self.LIMIT)])
        except StateUnavailable:
            return None
        return None if admitted else max(1, math.ceil(reading.retry_after or 1))

    async def failed(self) -> None:
        with contextlib.suppress(StateUnavailable):
            await self._state.add([(self._key, self.WINDOW, 1.0)])

    async def succeeded(self) -> None:
        with contextlib.suppress(StateUnavailable):
            await self._state.clear([self._key])


def _invalid_request(description: str) -> OAuthError:
    return OAuthError(400, "invalid_request", description)


async def _params(request: web.Request) -> dict[str, str]:
    raw = await request.read()
    ctype = request.content_type
    if not raw.strip():
        return {}
    if ctype == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise _invalid_request("The form body could not be parsed.") from None
        names = [k for k, _ in pairs]
        if len(names) != len(set(names)):
            raise _invalid_request("A parameter appears more than once.")
        return dict(pairs)
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            doc: Any = jsonx.loads(raw)
        except ValueError:
            raise _invalid_request("The JSON body could not be parsed.") from None
        if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
            raise _invalid_request("The JSON body must be an object of string parameters.")
        return doc
    raise _invalid_request("Send the parameters as application/x-www-form-urlencoded or application/json.")


def _basic(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise _invalid_request("Only HTTP Basic client authentication is accepted in the Authorization header.")
    try:
        client_id, sep, secret = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid_request("The Basic credentials could not be decoded.") from None
    if not sep:
        raise _invalid_request("The Basic credentials must be 'client_id:client_secret'.")
    return unquote_plus(client_id), unquote_plus(secret)


async def _grant(request: web.Request) -> web.Response:
    basic = _basic(request)
    params = await _params(request)
    grant = params.get("grant_type")
    if not grant:
        raise _invalid_request("grant_type is required.")
    if grant != GRANT:
        raise OAuthError(400, "unsupported_grant_type", f"Only grant_type={GRANT} is supported.")
    if basic is not None and ("client_secret" in params or "client_id" in params and params["client_id"] != basic[0]):
        raise _invalid_request("Send the client credentials one way: HTTP Basic or the body, not both.")
    client_id, secret = basic if basic is not None else (params.get("client_id"), params.get("client_secret"))
    if not client_id or not secret:
        raise _invalid_request("client_id and client_secret are required.")
    throttle = Throttle(request.app[LIVE].state, client_id)
    wait = await throttle.wait()
    if wait is not None:
        raise OAuthError(
            429, "slow_down", f"Too many failed attempts for this client; retry in {wait}s.", {"Retry-After": str(wait)}
        )
    clients = request[RUNTIME].clients
    principal = clients.check_credentials(client_id, secret)
    if principal is None or not principal.client.enabled:
        await throttle.failed()
        log.info("token request refused for client_id %.64r", client_id)
        challenge = {"WWW-Authenticate": 'Basic realm="localrouter"'} if basic is not None else {}
        reason = "Client authentication failed." if principal is None else "This client is disabled."
        raise OAuthError(401, "invalid_client", reason, challenge)
    await throttle.succeeded()
    if principal.client.name in request.app[LIVE].overrides.suspended:  # the right secret: no failure to count
        raise OAuthError(401, "client_suspended", "This client is suspended by an operator.")
    token = clients.signer.issue(principal.client.name, principal.client.secret_sha256)
    body = {"access_token": token, "token_type": "Bearer", "expires_in": clients.signer.ttl}
    return web.Response(body=jsonx.dumps(body), content_type="application/json", headers=_NO_STORE)


_PARAMS = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {"type": "string", "enum": [GRANT]},
        "client_id": {"type": "string", "description": "The client's name (or send it with HTTP Basic)"},
        "client_secret": {"type": "string", "description": "The client's secret (or send it with HTTP Basic)"},
    },
}
_TOKEN = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in"],
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer", "description": "Seconds"},
    },
}
_ERROR = {
    "type": "object",
    "required": ["error", "error_description"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}


def _answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


@docs(
    tags=["auth"],
    summary="OAuth 2.0 client credentials grant (no bearer token needed)",
    description="Form (`application/x-www-form-urlencoded`), JSON, or HTTP Basic credentials: "
    "`grant_type=client_credentials`, `client_id` (the client's name), `client_secret`. "
    "The access token works wherever a client secret does. Errors follow RFC 6749: "
    '`{"error", "error_description"}`.',
    requestBody={
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": _PARAMS}, "application/json": {"schema": _PARAMS}},
    },
    responses={
        200: _answer("The access token", _TOKEN),
        400: _answer("invalid_request / unsupported_grant_type", _ERROR),
        401: _answer("invalid_client; client_suspended (suspended by an operator)", _ERROR),
        429: _answer("slow_down: too many failures for this client_id (see Retry-After)", _ERROR),
    },
)
async def token(request: web.Request) -> web.Response:
    try:
        return await _grant(request)
    except OAuthError as err:
        return err.response()
