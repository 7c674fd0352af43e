"""Authorization: may this client use the model it asked for?"""

from __future__ import annotations

from aiohttp import web

from gateway.errors import InvalidRequest
from gateway.keys import BODY, CHAIN, PRINCIPAL, RUNTIME


async def resolve(request: web.Request) -> None:
    """An inference request (its body already read): the model's chain of targets, or a 4xx."""
    model = request[BODY].get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    request[CHAIN] = await request[RUNTIME].router.chain(request[PRINCIPAL].policy, model)
