"""``create_app(config)``: wiring only."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gateway import handlers, openapi
from gateway.catalog import Catalog
from gateway.clients import ClientRegistry
from gateway.config import Config
from gateway.keys import CLIENTS, CONFIG, OPENAPI, PROVIDERS, ROUTER, STARTED_AT
from gateway.routing import Router
from middlewares.auth import auth
from middlewares.errors import errors
from middlewares.permissions import permissions
from providers import ADAPTERS

PREFIXES = ("", "/v1")


def create_app(config: Config) -> web.Application:
    app = web.Application(
        middlewares=[errors, auth, permissions],
        client_max_size=config.server.max_body_bytes,
    )
    app[CONFIG] = config
    app[STARTED_AT] = time.time()
    for method, path, handler in handlers.ROUTES:
        app.router.add_route(method, path, handler)
    app[OPENAPI] = openapi.build(app)  # documents the root paths; /v1 mirrors them
    for method, path, handler in handlers.ROUTES:
        app.router.add_route(method, PREFIXES[1] + path, handler)
    app.cleanup_ctx.append(_upstreams)
    return app


async def _upstreams(app: web.Application) -> AsyncIterator[None]:
    """The one shared upstream session, the providers on it, and what is derived from them."""
    config = app[CONFIG]
    connector = aiohttp.TCPConnector(limit=config.server.upstream_connections, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector, raise_for_status=False) as session:
        providers = {p.name: ADAPTERS[p.type](p, session) for p in config.providers}
        catalog = Catalog(providers)
        router = Router(config, catalog)
        app[PROVIDERS] = providers
        app[ROUTER] = router
        app[CLIENTS] = ClientRegistry(config, router.policies)
        catalog.start()
        try:
            yield
        finally:
            await catalog.close()
