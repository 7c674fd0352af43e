"""Authentication: who is calling. It identifies; it does not authorize."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import AuthenticationFailed
from gateway.keys import CLIENTS, PRINCIPAL, PUBLIC_ATTR

_SCHEME = "bearer "


def _token(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if not header:
        raise AuthenticationFailed(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <your client secret>'.")
    if header[: len(_SCHEME)].lower() != _SCHEME or not header[len(_SCHEME):].strip():
        raise AuthenticationFailed("Malformed Authorization header; expected 'Bearer <your client secret>'.")
    return header[len(_SCHEME):].strip()


@web.middleware
async def auth(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    match = request.match_info
    if match.http_exception is not None or getattr(match.handler, PUBLIC_ATTR, False):
        return await handler(request)
    principal = request.app[CLIENTS].identify(_token(request))
    if principal is None:
        raise AuthenticationFailed("Incorrect API key provided.")
    if not principal.client.enabled:
        raise AuthenticationFailed("This client is disabled.", code="client_disabled")
    request[PRINCIPAL] = principal
    return await handler(request)
