"""What an endpoint is, for every layer that reads it: a :class:`Route` (the API's table lists them,
gateway.api.routes) and the :class:`Table` that finds a request's Route from the route aiohttp matched.
Here, below the keys and the middlewares, so that they read it without importing the API."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import AbstractRoute


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint. ``endpoint``: its label in metrics, the access log and usage records (one of a fixed
    set); ``public``: no client secret is asked for; ``inference``: before it runs, the request is rate
    limited, its JSON body read and its model's chain of targets resolved (middlewares.gate);
    ``dialect``: the shape of its error answers (``openai``, or ``anthropic`` for Anthropic's Messages
    API: middlewares.errors); ``admin``: only clients with ``admin: true`` may call it (the operator's
    API: anyone else gets 403); ``anonymous``: its handler also runs for a request without a credential
    (no principal stored; one that is sent must hold)."""

    method: str
    path: str
    handler: Handler
    endpoint: str
    public: bool = False
    inference: bool = False
    dialect: str = "openai"
    admin: bool = False
    anonymous: bool = False


async def _unmatched(request: web.Request) -> web.StreamResponse:
    return await request.match_info.handler(request)  # aiohttp's own 404 or 405


UNMATCHED = Route("*", "", _unmatched, "other", public=True)
"""A request that matched no route: aiohttp answers it (404, 405), or the gate does (a CORS preflight);
no secret is asked for an answer that serves nothing."""


class Table(dict[AbstractRoute, Route]):
    """The Route of each route aiohttp matches (one dict lookup per request); any other: ``UNMATCHED``."""

    def __missing__(self, key: AbstractRoute) -> Route:
        return UNMATCHED
