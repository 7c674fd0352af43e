"""Every typed key the app and its requests carry, in one place."""

from __future__ import annotations

from aiohttp import web

from gateway.cache import Recording
from gateway.config import Config
from gateway.endpoints import Route, Table
from gateway.firewall import Firewall
from gateway.observability.exchange import Exchange
from gateway.observability.observer import Observer
from gateway.observability.responses_store import ResponsesStore
from gateway.routing.router import Principal, Target
from gateway.runtime import Live, Runtime
from gateway.shutdown import Shutdown

CONFIG = web.AppKey("config", Config)  # the config the app was created with (socket, body limit)
STARTED_AT = web.AppKey("started_at", float)
LIVE = web.AppKey("live", Live)
OPENAPI = web.AppKey("openapi", bytes)
OBSERVER = web.AppKey("observer", Observer)
SHUTDOWN = web.AppKey("shutdown", Shutdown)  # the process's graceful end, as requests see it
RESPONSES = web.AppKey("responses", ResponsesStore)  # the stored responses of the Responses API
FIREWALL = web.AppKey("firewall", Firewall)  # held requests, decisions, the secrets detector; kept across reloads
ROUTE_TABLE: web.AppKey[Table] = web.AppKey("route_table")  # each route aiohttp matches -> its Route

ROUTE: web.RequestKey[Route] = web.RequestKey("route")  # the endpoint this request reached, found once
EXCHANGE = web.RequestKey("exchange", Exchange)  # what is known about this request, for logs and metrics
RUNTIME = web.RequestKey("runtime", Runtime)  # the runtime this request started on
PRINCIPAL = web.RequestKey("principal", Principal)
BODY = web.RequestKey("body", dict)
CHAIN = web.RequestKey("chain", tuple[Target, ...])
RATE_HEADERS = web.RequestKey("rate_headers", dict)  # x-ratelimit-* for the answer
CACHE_RECORDING = web.RequestKey("cache_recording", Recording)  # a stream's events, kept for the response cache
