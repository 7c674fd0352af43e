"""``/openapi.json``: generated once, at app creation, from the handlers' marshmallow schemas."""

from __future__ import annotations

import warnings
from typing import Any

from aiohttp import web
from aiohttp_apigami import AiohttpApiSpec, OpenApiVersion, docs

from gateway import __version__, jsonx
from gateway.keys import OPENAPI

DESCRIPTION = (
    "An OpenAI-compatible gateway. Every endpoint is also served under `/v1`. "
    "Authenticate with `Authorization: Bearer <client secret>`."
)
# relative to the host that serves this document; the OpenAI SDKs' base URL ends in /v1
SERVERS = [
    {"url": "/v1", "description": "OpenAI SDK style (base URL ending in /v1)"},
    {"url": "/", "description": "The same endpoints at the root"},
]
EVENT_STREAM = {
    "schema": {
        "type": "string",
        "description": ("Server-Sent Events: one `data: <JSON chunk>` event per chunk, the last one `data: [DONE]`."),
    }
}
ERROR = {"$ref": "#/components/schemas/Error"}
METHOD_NOT_ALLOWED = {
    "description": "Another method on this path (`Allow` lists the methods it has)",
    "headers": {"Allow": {"schema": {"type": "string"}}},
    "content": {"application/json": {"schema": ERROR}},
}
TOO_LARGE = {
    "description": "The body is larger than `server.max_body_bytes`",
    "content": {"application/json": {"schema": ERROR}},
}


def build(app: web.Application) -> bytes:
    """The document for the routes ``app`` has now, as JSON bytes."""
    api = AiohttpApiSpec(
        url="",
        title="LocalRouter Gateway",
        version=__version__,
        openapi_version=OpenApiVersion.V303,
        info={"description": DESCRIPTION},
        servers=SERVERS,
    )
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme("apiKeyAuth", {"type": "apiKey", "in": "header", "name": "x-api-key"})
    with warnings.catch_warnings():
        # apigami stores its document under a plain string key; ours is the bytes returned here
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        api.register(app, in_place=True)
    doc = api.swagger_dict()
    for operations in doc["paths"].values():
        for operation in operations.values():
            _complete(operation)
    return jsonx.dumps(doc)


def _complete(operation: dict[str, Any]) -> None:
    """What apigami cannot say: the answers aiohttp itself gives on every path (405, and 413 where a
    body is read), and a 200 that may also be an event stream (``@docs(produces=[..., "text/event-stream"])``;
    ``event_stream=`` describes it when its events are not chat's)."""
    # apigami's @docs adds Swagger 2.0's produces/consumes, which OpenAPI 3.0 does not allow
    produces = operation.pop("produces", None) or []
    operation.pop("consumes", None)
    stream = operation.pop("event_stream", EVENT_STREAM)
    responses = operation["responses"]
    if "text/event-stream" in produces:
        responses["200"].setdefault("content", {})["text/event-stream"] = stream
    responses.setdefault("405", METHOD_NOT_ALLOWED)
    if "requestBody" in operation:
        responses.setdefault("413", TOO_LARGE)


@docs(
    tags=["openapi"],
    summary="This OpenAPI 3.0 document (no authentication)",
    responses={200: {"description": "The OpenAPI 3.0 document"}},
)
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")
