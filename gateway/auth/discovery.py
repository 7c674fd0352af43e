"""How an MCP client finds out how to authenticate: RFC 9728's protected-resource metadata (pointed to
by a 401's ``WWW-Authenticate``) names this gateway as its own authorization server, and RFC 8414's
metadata names its token endpoint and the one grant it offers, ``client_credentials``.

The documents name the gateway by the address the request used (scheme and Host). A trusted proxy
(``server.trusted_proxies``) may say otherwise with ``X-Forwarded-Proto`` and ``X-Forwarded-Host``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from aiohttp import hdrs, web

Networks = Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
PROTECTED_RESOURCE = "/.well-known/oauth-protected-resource"
AUTHORIZATION_SERVER = "/.well-known/oauth-authorization-server"


def base_url(request: web.Request, trusted: Networks) -> str:
    scheme, host = request.scheme, request.host
    if trusted and _trusted(request.remote, trusted):
        scheme = _first(request.headers.get(hdrs.X_FORWARDED_PROTO)) or scheme
        host = _first(request.headers.get(hdrs.X_FORWARDED_HOST)) or host
    return f"{scheme}://{host}"


def challenge(base: str) -> str:
    """The ``WWW-Authenticate`` of a 401 on the MCP endpoint."""
    return f'Bearer resource_metadata="{base}{PROTECTED_RESOURCE}"'


def protected_resource(base: str) -> dict[str, Any]:
    return {
        "resource": f"{base}/mcp",
        "authorization_servers": [base],
        "bearer_methods_supported": ["header"],
        "resource_name": "LocalRouter Gateway",
    }


def authorization_server(base: str) -> dict[str, Any]:
    return {
        "issuer": base,
        "token_endpoint": f"{base}/oauth/token",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "response_types_supported": [],
    }


def _first(value: str | None) -> str | None:
    return value.split(",")[0].strip() or None if value else None


def _trusted(peer: str | None, trusted: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(peer or "")
    except ValueError:
        return False
    return any(ip in n for n in trusted)
