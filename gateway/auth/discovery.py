"""How an MCP client finds out how to authenticate: RFC 9728's protected-resource metadata (pointed to
by a 401's ``WWW-Authenticate``) names this gateway as its own authorization server, and RFC 8414's
metadata names its token endpoint and the one grant it offers, ``client_credentials``.

Each path of the MCP endpoint is a resource of its own, with its own document: the well-known path
followed by the resource's path (RFC 9728 section 3.1), naming that resource's URL exactly (section 3.3),
as a client checks it; the root's document is the bare well-known path. RFC 8414 requires an
``authorization_endpoint``: it exists, and answers every request with ``unsupported_response_type``.

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
AUTHORIZE = "/oauth/authorize"
#: the MCP endpoint's paths (gateway.api.routes), with their ``/v1`` twins
MCP_PATHS = ("/mcp", "/", "/v1/mcp", "/v1/")


def base_url(request: web.Request, trusted: Networks) -> str:
    scheme, host = request.scheme, request.host
    if trusted and _trusted(request.remote, trusted):
        scheme = _first(request.headers.get(hdrs.X_FORWARDED_PROTO)) or scheme
        host = _first(request.headers.get(hdrs.X_FORWARDED_HOST)) or host
    return f"{scheme}://{host}"


def metadata_path(resource_path: str) -> str:
    """Where the protected-resource document of the MCP endpoint at ``resource_path`` is."""
    return PROTECTED_RESOURCE + resource_path.rstrip("/")


def resource_path(document_path: str) -> str | None:
    """The MCP endpoint's path a protected-resource document (at ``document_path``, perhaps under ``/v1``)
    is for; None for a document of nothing."""
    suffix = document_path.partition(PROTECTED_RESOURCE)[2]
    return next((p for p in MCP_PATHS if metadata_path(p) == PROTECTED_RESOURCE + suffix), None)


def challenge(base: str, path: str, credentials: bool) -> str:
    """The ``WWW-Authenticate`` of a 401 on the MCP endpoint at ``path``: the document of that resource;
    ``invalid_token`` when credentials were sent (RFC 6750 section 3.1: none sent, no error)."""
    document = metadata_path(path if path in MCP_PATHS else "/")
    error = 'error="invalid_token", ' if credentials else ""
    return f'Bearer {error}resource_metadata="{base}{document}"'


def protected_resource(base: str, path: str) -> dict[str, Any]:
    return {
        "resource": base + path,
        "authorization_servers": [base],
        "bearer_methods_supported": ["header"],
        "resource_name": "LocalRouter Gateway",
    }


def authorization_server(base: str) -> dict[str, Any]:
    return {
        "issuer": base,
        "authorization_endpoint": base + AUTHORIZE,
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
