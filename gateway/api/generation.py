"""``GET /generation?id=``: one of the caller's own usage records."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp_apigami import docs, response_schema

from gateway.api import schemas
from gateway.api.answers import AUTH, error_docs, json_answer, string_parameter
from gateway.errors import InvalidRequest, NotFound, StoreUnavailable
from gateway.keys import OBSERVER, PRINCIPAL
from gateway.observability.usage import StoreError

log = logging.getLogger("localrouter.generation")


@docs(
    tags=["observability"],
    summary="One of this client's requests: model, provider, tokens, cost",
    security=AUTH,
    parameters=[string_parameter("query", "id", "The request's `X-Request-ID`")],
    responses={
        **error_docs(400, 401, 404),
        503: {"schema": schemas.ErrorSchema, "description": "The usage records' database is unreachable now"},
    },
)
@response_schema(schemas.GenerationSchema, 200)
async def generation(request: web.Request) -> web.Response:
    record_id = request.query.get("id")
    if not record_id:
        raise InvalidRequest("'id' is required: the X-Request-ID of one of your requests.", param="id")
    writer = request.app[OBSERVER].usage
    try:
        record = await writer.get(record_id) if writer is not None else None
    except StoreError as exc:
        log.warning("usage record %s not read: %s", record_id[:100], exc)
        raise StoreUnavailable("Usage records cannot be reached now; try again later.") from exc
    if record is None or record.client != request[PRINCIPAL].client.name:  # another client's: not found
        raise NotFound(f"No request with id {record_id[:100]!r} for this client.", param="id")
    return json_answer({"object": "generation", **record.public()})
