"""The route table: every endpoint once, with what the layers before its handler owe it (a
:class:`gateway.endpoints.Route`). Each answers at the root and under ``/v1``; the app maps the routes
aiohttp matches to these (gateway.app), and every layer reads the request's Route from there
(``keys.ROUTE``) instead of markers on handlers."""

from __future__ import annotations

from gateway.api import (
    admin,
    discovery,
    generation,
    health,
    inference,
    mcp,
    messages,
    metrics,
    models,
    oauth,
    openapi,
    operator_page,
    responses,
)
from gateway.auth import discovery as auth_discovery
from gateway.endpoints import Route

ROUTES = (
    Route("GET", "/health", health.health, "health", public=True),
    Route("GET", "/openapi.json", openapi.openapi, "openapi", public=True),
    Route("GET", "/models", models.models, "models"),
    Route("GET", "/models/{id:.+}", models.model, "models"),  # ids hold a '/'
    Route("POST", "/chat/completions", inference.chat_completions, "chat", inference=True),
    Route("POST", "/completions", inference.completions, "completions", inference=True),
    Route("POST", "/embeddings", inference.embeddings, "embeddings", inference=True),
    Route("POST", "/messages", messages.messages, "messages", inference=True, dialect="anthropic"),
    Route("POST", "/messages/count_tokens", messages.count_tokens, "count_tokens", inference=True, dialect="anthropic"),
    Route("POST", "/responses", responses.create, "responses", inference=True),
    Route("GET", "/responses/{id}", responses.retrieve, "responses"),
    Route("DELETE", "/responses/{id}", responses.delete, "responses"),
    Route("GET", "/metrics", metrics.metrics, "metrics", public=True),  # its own token, if any (metrics.token)
    Route("GET", "/generation", generation.generation, "generation"),
    Route("POST", "/oauth/token", oauth.token, "oauth", public=True),  # the client authenticates in the body
    *(
        Route("GET", auth_discovery.metadata_path(p), discovery.protected_resource, "oauth", public=True)
        for p in auth_discovery.MCP_PATHS  # one document per path of the MCP endpoint (RFC 9728 section 3.1)
    ),
    *(Route(m, auth_discovery.AUTHORIZE, discovery.authorize, "oauth", public=True) for m in ("GET", "POST")),
    Route("GET", "/.well-known/oauth-authorization-server", discovery.authorization_server, "oauth", public=True),
    *admin.ROUTES,
    # MCP's Streamable HTTP transport, on its own path and on the root (no other route is at "/")
    *(
        Route(m, p, h, "mcp")
        for p in ("/mcp", "/")
        for m, h in (("POST", mcp.post), ("GET", mcp.get), ("DELETE", mcp.delete))
    ),
)

ROOT_ROUTES = tuple(
    # the operator page: its files are public, its data comes from the admin API (admin clients only)
    Route(method, path, handler, "ui", public=True)
    for path, handler in (
        ("/ui", operator_page.redirect),
        ("/ui/", operator_page.index),
        ("/ui/{path:.+}", operator_page.asset),
        ("/favicon.ico", operator_page.favicon),
    )
    for method in ("GET", "HEAD")  # HEAD as GET without the body (aiohttp leaves the body out)
)
"""Served at the root only: a browser's paths, not an SDK's (no ``/v1`` twin)."""
