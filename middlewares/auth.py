"""Authentication: who is calling. It identifies; it does not authorize. The clients it knows are those
of the runtime the gate pinned the request to."""

from __future__ import annotations

import ipaddress

from aiohttp import hdrs, web
from multidict import istr

from gateway.auth import overrides
from gateway.auth.clients import INTERNAL_TEST_TOKEN
from gateway.auth.tokens import CSRF_HEADER, SESSION_COOKIE
from gateway.errors import AuthenticationFailed, PermissionDenied
from gateway.keys import LIVE, PRINCIPAL, ROUTE, RUNTIME
from gateway.routing.router import Principal
from gateway.runtime import Runtime

_SCHEME = "bearer "
# HTTP's optional whitespace only: str.strip() would also drop Unicode spaces (U+00A0, U+3000...), giving one
# secret or token many accepted spellings
_OWS = " \t"
_API_KEY = istr("x-api-key")  # Anthropic's SDKs and Claude Code send the key so
_FORWARDED = (hdrs.X_FORWARDED_FOR, hdrs.FORWARDED, istr("X-Real-IP"))
_CSRF = istr(CSRF_HEADER)
_SAFE = frozenset((hdrs.METH_GET, hdrs.METH_HEAD, hdrs.METH_OPTIONS))


def _token(request: web.Request) -> str:
    header = request.headers.get(hdrs.AUTHORIZATION)
    if not header:
        key = request.headers.get(_API_KEY, "").strip(_OWS)
        if key:
            return key
        raise AuthenticationFailed(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <your client secret>' "
            "(or as 'x-api-key: <your client secret>')."
        )
    if header[: len(_SCHEME)].lower() != _SCHEME or not header[len(_SCHEME) :].strip(_OWS):
        raise AuthenticationFailed("Malformed Authorization header; expected 'Bearer <your client secret>'.")
    return header[len(_SCHEME) :].strip(_OWS)


def _is_loopback(request: web.Request) -> bool:
    """A caller on this host itself, not one a local reverse proxy forwards for."""
    if any(h in request.headers for h in _FORWARDED):
        return False
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def _internal_test(request: web.Request, runtime: Runtime) -> Principal:
    if not runtime.config.server.internal_test_token:
        raise AuthenticationFailed("Incorrect API key provided.")
    if not _is_loopback(request):
        raise AuthenticationFailed("The internal-test token is accepted only from this host itself.")
    return runtime.clients.internal


def _session(request: web.Request, runtime: Runtime) -> Principal | None:
    """An admin endpoint called with the operator page's session cookie (and no other credential); a
    state-changing request must also carry the CSRF token that goes with the cookie."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie or hdrs.AUTHORIZATION in request.headers or _API_KEY in request.headers:
        return None
    found = runtime.clients.session(cookie, request.app[LIVE].overrides.revoked)
    if found is None:
        if request[ROUTE].anonymous:
            return None
        raise AuthenticationFailed("The session has expired or was logged out; log in again.", code="session_expired")
    if request.method not in _SAFE and not runtime.clients.signer.csrf_matches(cookie, request.headers.get(_CSRF, "")):
        raise PermissionDenied("Missing or wrong X-CSRF-Token header.", code="csrf_failed")
    return found[0]


def identify(request: web.Request) -> None:
    """Store who is calling (unless the endpoint is public, or the request matched none)."""
    route = request[ROUTE]
    if route.public:
        return
    runtime = request[RUNTIME]
    found = _session(request, runtime) if route.admin else None
    if found is None:
        if route.anonymous and hdrs.AUTHORIZATION not in request.headers and _API_KEY not in request.headers:
            return  # its handler answers a caller who sent no credential (and no live session) too
        token = _token(request)
        if token == INTERNAL_TEST_TOKEN:
            request[PRINCIPAL] = _internal_test(request, runtime)
            return
        found = runtime.clients.identify(token)
        if found is None:
            raise AuthenticationFailed("Incorrect API key provided.")
    overrides.check(found.client, request.app[LIVE].overrides)  # disabled, or suspended on any process
    request[PRINCIPAL] = found


def require_admin(request: web.Request) -> None:
    """An operator's endpoint: only a client with ``admin: true`` may call it (an ``anonymous`` endpoint
    called without a credential has no principal: its handler shows nothing of an admin's)."""
    principal = request.get(PRINCIPAL)
    if principal is not None and not principal.client.admin:
        raise PermissionDenied("This endpoint is for admin clients only.", code="admin_required")
