"""The route table: every endpoint once, with what the layers before its handler owe it. Each answers at
the root and under ``/v1``; the app maps the routes aiohttp matches to these (gateway.app), and every
layer reads the request's Route from there (``keys.ROUTE``) instead of markers on handlers."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import AbstractRoute

from gateway.api import (
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
    responses,
)


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint. ``endpoint``: its label in metrics, the access log and usage records (one of a fixed
    set); ``public``: no client secret is asked for; ``inference``: before it runs, the request is rate
    limited, its JSON body read and its model's chain of targets resolved (middlewares.gate);
    ``dialect``: the shape of its error answers (``openai``, or ``anthropic`` for Anthropic's Messages
    API: middlewares.errors)."""

    method: str
    path: str
    handler: Handler
    endpoint: str
    public: bool = False
    inference: bool = False
    dialect: str = "openai"


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
    Route("GET", "/.well-known/oauth-protected-resource", discovery.protected_resource, "oauth", public=True),
    Route("GET", "/.well-known/oauth-authorization-server", discovery.authorization_server, "oauth", public=True),
    # MCP's Streamable HTTP transport, on its own path and on the root (no other route is at "/")
    *(
        Route(m, p, h, "mcp")
        for p in ("/mcp", "/")
        for m, h in (("POST", mcp.post), ("GET", mcp.get), ("DELETE", mcp.delete))
    ),
)


async def _unmatched(request: web.Request) -> web.StreamResponse:
    return await request.match_info.handler(request)  # aiohttp's own 404 or 405


UNMATCHED = Route("*", "", _unmatched, "other", public=True)
"""A request that matched no route: aiohttp answers it (404, 405), or the gate does (a CORS preflight);
no secret is asked for an answer that serves nothing."""


class Table(dict[AbstractRoute, Route]):
    """The Route of each route aiohttp matches (one dict lookup per request); any other: ``UNMATCHED``."""

    def __missing__(self, key: AbstractRoute) -> Route:
        return UNMATCHED
