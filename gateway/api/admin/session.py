"""The operator page's login: an admin client's secret buys a signed session cookie (HttpOnly,
SameSite=Strict, Secure when the page came over TLS, directly or through a trusted proxy) and the CSRF
token that every state-changing request made with the cookie must carry (``X-CSRF-Token``), logout
included. The cookie and the token are checked with the key that signs access tokens, so every worker and
replica sharing ``auth.signing_key`` accepts them; a logout revokes the cookie's session id where every
process reads it (gateway.auth.overrides), so a copy of the cookie is refused from then on."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema

from gateway import jsonx
from gateway.api.admin import schemas
from gateway.api.answers import AUTH, json_answer
from gateway.auth import discovery, overrides
from gateway.auth.overrides import OverridesUnavailable
from gateway.auth.tokens import CSRF_HEADER, SESSION_COOKIE, SESSION_TTL
from gateway.errors import (
    AuthenticationFailed,
    InvalidRequest,
    PermissionDenied,
    StoreUnavailable,
    UnsupportedMediaType,
)
from gateway.keys import LIVE, OBSERVER, RUNTIME

_ERRORS = {
    400: {"schema": schemas.ErrorSchema, "description": "The body is not a JSON object with a `secret`"},
    401: {"schema": schemas.ErrorSchema, "description": "Wrong secret, or the client is disabled or suspended"},
    403: {"schema": schemas.ErrorSchema, "description": "The client is not an admin"},
    415: {"schema": schemas.ErrorSchema, "description": "The body is not `application/json`"},
}


async def _secret(request: web.Request) -> str:
    if request.content_type != "application/json":
        raise UnsupportedMediaType('Send the secret as JSON: {"secret": "..."}.')
    try:
        body = jsonx.loads(await request.read())
    except ValueError:
        raise InvalidRequest("We could not parse the JSON body of your request.") from None
    secret = body.get("secret") if isinstance(body, dict) else None
    if not isinstance(secret, str) or not secret:
        raise InvalidRequest("'secret' is required: an admin client's secret.", param="secret")
    return secret


def _session_doc(request: web.Request, client: str, cookie: str, expires: int) -> dict[str, object]:
    return {"client": client, "csrf": request[RUNTIME].clients.signer.csrf(cookie), "expires_at": expires}


@docs(
    tags=["admin"],
    summary="Log in to the operator page: an admin client's secret -> a session cookie",
    responses=_ERRORS,
)
@request_schema(schemas.AdminLoginSchema)
@response_schema(schemas.AdminSessionSchema, 200, description="Logged in; `Set-Cookie: lr_admin=...`")
async def login(request: web.Request) -> web.Response:
    runtime = request[RUNTIME]
    found = runtime.clients.identify(await _secret(request))
    if found is None:
        raise AuthenticationFailed("Incorrect secret.")
    overrides.check(found.client, request.app[LIVE].overrides)
    if not found.client.admin:
        raise PermissionDenied("Only admin clients may log in to the operator page.", code="admin_required")
    cookie, expires = runtime.clients.signer.issue_session(found.client.name, found.client.secret_sha256, SESSION_TTL)
    answer = json_answer(_session_doc(request, found.client.name, cookie, expires))
    secure = discovery.base_url(request, request.app[OBSERVER].trusted).startswith("https:")
    answer.set_cookie(
        SESSION_COOKIE, cookie, max_age=SESSION_TTL, path="/", httponly=True, samesite="Strict", secure=secure
    )
    return answer


@docs(
    tags=["admin"],
    summary="Log out of the operator page: the session ends on every process, the cookie is cleared",
    description="With a live session cookie, send its `X-CSRF-Token` (else 403 `csrf_failed`); the session "
    "is then refused everywhere, even a copy of the cookie. Without one (none, expired, or logged out "
    "already) there is nothing to end: 204.",
    responses={
        204: {"description": "Logged out"},
        403: {"schema": schemas.ErrorSchema, "description": "Missing or wrong `X-CSRF-Token`"},
        503: {"schema": schemas.ErrorSchema, "description": "The shared state cannot be reached; still logged in"},
    },
)
async def logout(request: web.Request) -> web.Response:
    cookie = request.cookies.get(SESSION_COOKIE, "")
    clients, shared = request[RUNTIME].clients, request.app[LIVE].overrides
    found = clients.session(cookie, shared.revoked) if cookie else None
    if found is not None:
        if not clients.signer.csrf_matches(cookie, request.headers.get(CSRF_HEADER, "")):
            raise PermissionDenied("Missing or wrong X-CSRF-Token header.", code="csrf_failed")
        try:
            await shared.revoke(found[1].id, found[1].expires)
        except OverridesUnavailable as exc:
            raise StoreUnavailable("The shared state cannot be reached now; still logged in. Try again.") from exc
    answer = web.Response(status=204)
    answer.del_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict")
    return answer


@docs(
    tags=["admin"],
    summary="The operator page's session: who is logged in, and the CSRF token its actions send",
    description='`{"client": null}` when the request has no live session cookie (none, expired or logged '
    "out): a page asks this before anyone logged in. A Bearer sent must still be an admin's.",
    security=[{}, *AUTH],  # the credential is optional
    responses={
        401: {"schema": schemas.ErrorSchema, "description": "A wrong Bearer, or the client is suspended"},
        403: {"schema": schemas.ErrorSchema, "description": "The client is not an admin"},
    },
)
@response_schema(schemas.AdminSessionStateSchema, 200)
async def session(request: web.Request) -> web.Response:
    cookie = request.cookies.get(SESSION_COOKIE, "")
    found = request[RUNTIME].clients.session(cookie, request.app[LIVE].overrides.revoked) if cookie else None
    if found is None:
        return json_answer({"client": None})
    principal, claims = found
    return json_answer(_session_doc(request, principal.client.name, cookie, claims.expires))
