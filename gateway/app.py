"""``create_app(config)``: wiring only."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import IO

from aiohttp import web

from gateway.api import openapi
from gateway.api.routes import ROOT_ROUTES, ROUTES
from gateway.config import Config
from gateway.endpoints import Table
from gateway.firewall import Firewall
from gateway.keys import CONFIG, FIREWALL, LIVE, OBSERVER, OPENAPI, RESPONSES, ROUTE_TABLE, SHUTDOWN, STARTED_AT
from gateway.observability.metrics import CACHE_BYTES
from gateway.observability.observer import Observer
from gateway.observability.stores import responses_store
from gateway.runtime import Live
from gateway.shutdown import Shutdown
from middlewares.errors import errors
from middlewares.gate import gate
from middlewares.observe import observe
from middlewares.security import response_headers

PREFIXES = ("", "/v1")


def create_app(config: Config, access_out: IO[bytes] | None = None) -> web.Application:
    """``access_out``: where the access log goes (default: stdout)."""
    app = web.Application(
        middlewares=[observe, errors, gate],
        client_max_size=config.server.max_body_bytes,
    )
    app[CONFIG] = config
    app[OBSERVER] = Observer(config, access_out)
    app[STARTED_AT] = time.time()
    app[SHUTDOWN] = Shutdown()
    table = app[ROUTE_TABLE] = Table()
    for route in ROUTES:
        table[app.router.add_route(route.method, route.path, route.handler)] = route
    app[OPENAPI] = openapi.build(app)  # documents the root paths; /v1 mirrors them
    for route in ROUTES:
        table[app.router.add_route(route.method, PREFIXES[1] + route.path, route.handler)] = route
    for route in ROOT_ROUTES:
        table[app.router.add_route(route.method, route.path, route.handler)] = route
    app.on_response_prepare.append(response_headers)
    app.cleanup_ctx.append(_upstreams)
    app.cleanup_ctx.append(_responses)
    app.cleanup_ctx.append(_firewall)
    return app


async def _upstreams(app: web.Application) -> AsyncIterator[None]:
    """The live runtime (reloaded on a config change), with the upstream connection pools it owns."""
    config = app[CONFIG]
    live = Live(config)
    app[LIVE] = live
    metrics = app[OBSERVER].metrics
    if metrics is not None and config.cache.backend == "memory":  # Redis keeps no count: no gauge
        live.cache.size_cell = metrics.cell(CACHE_BYTES)
    live.current.start()
    live.overrides.start()
    app[OBSERVER].start()
    watcher = asyncio.get_running_loop().create_task(live.watch()) if os.path.isfile(config.source) else None
    try:
        yield
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await live.close()
        await app[OBSERVER].close()


async def _responses(app: web.Application) -> AsyncIterator[None]:
    """The Responses API's stored responses, in the usage records' database; without one (``usage.path:
    null``), in memory: this process's alone, gone when it stops."""
    config = app[CONFIG]
    store = app[RESPONSES] = responses_store(config.usage, config.responses.ttl)
    try:
        yield
    finally:
        store.close()


async def _firewall(app: web.Application) -> AsyncIterator[None]:
    """The firewall's held requests and decisions (through Redis with ``state.backend: redis``)."""
    observer = app[OBSERVER]
    firewall = app[FIREWALL] = Firewall(app[CONFIG].state, observer.metrics, observer.usage)
    await firewall.start()
    try:
        yield
    finally:
        await firewall.close()
