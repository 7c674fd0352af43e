"""``GET /.well-known/oauth-protected-resource`` and ``/.well-known/oauth-authorization-server``: how an
MCP client discovers where to get a token (gateway.auth.discovery). No authentication."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs

from gateway.api.answers import json_answer
from gateway.auth import discovery
from gateway.keys import OBSERVER


@docs(
    tags=["auth"],
    summary="OAuth protected-resource metadata, RFC 9728 (no authentication)",
    responses={200: {"description": "Names this gateway as the resource's authorization server"}},
)
async def protected_resource(request: web.Request) -> web.Response:
    return json_answer(discovery.protected_resource(discovery.base_url(request, request.app[OBSERVER].trusted)))


@docs(
    tags=["auth"],
    summary="OAuth authorization-server metadata, RFC 8414 (no authentication)",
    responses={200: {"description": "The token endpoint and the client_credentials grant"}},
)
async def authorization_server(request: web.Request) -> web.Response:
    return json_answer(discovery.authorization_server(discovery.base_url(request, request.app[OBSERVER].trusted)))
