"""Every typed key the app and its requests carry, in one place."""

from __future__ import annotations

from aiohttp import web

from gateway.clients import ClientRegistry
from gateway.config import Config
from gateway.routing import Principal, Router, Target
from providers.base import Provider

CONFIG = web.AppKey("config", Config)
STARTED_AT = web.AppKey("started_at", float)
PROVIDERS = web.AppKey("providers", dict[str, Provider])
ROUTER = web.AppKey("router", Router)
CLIENTS = web.AppKey("clients", ClientRegistry)
OPENAPI = web.AppKey("openapi", bytes)

PRINCIPAL = web.RequestKey("principal", Principal)
BODY = web.RequestKey("body", dict)
CHAIN = web.RequestKey("chain", tuple[Target, ...])

# Handlers say what the middlewares owe them through attributes set in gateway.handlers.
PUBLIC_ATTR = "__localrouter_public__"
ENDPOINT_ATTR = "__localrouter_endpoint__"
