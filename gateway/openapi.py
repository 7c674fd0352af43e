"""``/openapi.json``: generated once, at app creation, from the handlers' marshmallow schemas."""

from __future__ import annotations

import warnings

from aiohttp import web
from aiohttp_apigami import AiohttpApiSpec, OpenApiVersion

from gateway import __version__, jsonx

DESCRIPTION = (
    "An OpenAI-compatible gateway. Every endpoint is also served under `/v1`. "
    "Authenticate with `Authorization: Bearer <client secret>`."
)


def build(app: web.Application) -> bytes:
    """The document for the routes ``app`` has now, as JSON bytes."""
    api = AiohttpApiSpec(
        url="",
        title="LocalRouter Gateway",
        version=__version__,
        openapi_version=OpenApiVersion.V303,
        info={"description": DESCRIPTION},
    )
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    with warnings.catch_warnings():
        # apigami stores its document under a plain string key; ours is the bytes returned here
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        api.register(app, in_place=True)
    doc = api.swagger_dict()
    for operations in doc["paths"].values():
        for operation in operations.values():
            # apigami's @docs adds Swagger 2.0's produces/consumes, which OpenAPI 3.0 does not allow
            operation.pop("produces", None)
            operation.pop("consumes", None)
    return jsonx.dumps(doc)
