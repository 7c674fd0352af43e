"""``GET /.well-known/oauth-protected-resource[/<MCP path>]`` and ``/.well-known/oauth-authorization-server``:
how an MCP client discovers where to get a token (gateway.auth.discovery); ``/oauth/authorize``, which the
authorization-server metadata must name, and which grants nothing. No authentication."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs

from gateway import jsonx
from gateway.api.answers import json_answer
from gateway.auth import discovery
from gateway.errors import NotFound
from gateway.keys import OBSERVER


@docs(
    tags=["auth"],
    summary="OAuth protected-resource metadata, RFC 9728 (no authentication)",
    description="One document per path of the MCP endpoint: the bare one for `/`, then `/mcp`, `/v1/mcp`, `/v1`.",
    responses={200: {"description": "Names the resource (the MCP endpoint's URL) and this gateway as its server"}},
)
async def protected_resource(request: web.Request) -> web.Response:
    path = discovery.resource_path(request.path)
    if path is None:
        raise NotFound(f"Unknown endpoint: GET {request.path[:200]}")
    base = discovery.base_url(request, request.app[OBSERVER].trusted)
    return json_answer(discovery.protected_resource(base, path))


@docs(
    tags=["auth"],
    summary="OAuth authorization-server metadata, RFC 8414 (no authentication)",
    responses={200: {"description": "The token endpoint and the client_credentials grant"}},
)
async def authorization_server(request: web.Request) -> web.Response:
    return json_answer(discovery.authorization_server(discovery.base_url(request, request.app[OBSERVER].trusted)))


@docs(
    tags=["auth"],
    summary="OAuth authorization endpoint: grants nothing (only client_credentials, at /oauth/token)",
    responses={400: {"description": '`{"error": "unsupported_response_type", "error_description"}`, never a redirect'}},
)
async def authorize(request: web.Request) -> web.Response:
    # no redirect to the client's redirect_uri: nothing here knows which redirect URIs a client may use
    body = {
        "error": "unsupported_response_type",
        "error_description": "Only client_credentials is granted, at /oauth/token: there is no authorization flow.",
    }
    return web.Response(
        body=jsonx.dumps(body), status=400, content_type="application/json", headers={"Cache-Control": "no-store"}
    )
