"""``GET /models`` and ``GET /models/{id}``: the models this client may use."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, response_schema

from gateway.api import schemas
from gateway.api.answers import AUTH, error_docs, json_answer, string_parameter
from gateway.errors import ModelNotFound
from gateway.keys import PRINCIPAL, RUNTIME, STARTED_AT


@docs(tags=["models"], summary="Models this client may use", security=AUTH, responses=error_docs(401))
@response_schema(schemas.ModelListSchema, 200)
async def models(request: web.Request) -> web.Response:
    started = int(request.app[STARTED_AT])
    found = await request[RUNTIME].router.visible_models(request[PRINCIPAL].policy)
    data = [
        {"id": model_id, "object": "model", "created": created or started, "owned_by": owner}
        for model_id, owner, created in found
    ]
    return json_answer({"object": "list", "data": data})


@docs(
    tags=["models"],
    summary="One model this client may use",
    security=AUTH,
    parameters=[
        string_parameter(
            "path", "id", "A `provider/model` id (its `/` as is or as `%2F`), `localrouter/auto`, or an alias"
        )
    ],
    responses=error_docs(401, 404),
)
@response_schema(schemas.ModelSchema, 200)
async def model(request: web.Request) -> web.Response:
    model_id = request.match_info["id"]
    found = await request[RUNTIME].router.visible_model(request[PRINCIPAL].policy, model_id)
    if found is None:  # one answer for unknown and not allowed: a client learns nothing of other models
        raise ModelNotFound(
            f"The model `{model_id[:200]}` does not exist or you do not have access to it.", param="model"
        )
    model_id, owner, created = found
    return json_answer(
        {"id": model_id, "object": "model", "created": created or int(request.app[STARTED_AT]), "owned_by": owner}
    )
