"""Authorization: may this client use the model it asked for? Reads the body once for everyone."""

from __future__ import annotations

from typing import Any

from aiohttp import hdrs, web

from gateway import jsonx
from gateway.errors import InvalidRequest, UnsupportedMediaType
from gateway.keys import BODY, CHAIN, PRINCIPAL, RUNTIME


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx that says what is wrong with it."""
    ctype = request.content_type
    if request.headers.get(hdrs.CONTENT_TYPE) and ctype != "application/json" and not ctype.endswith("+json"):
        raise UnsupportedMediaType(f"Unsupported Content-Type {ctype!r}; send 'application/json'.")
    raw = await request.read()
    if not raw or raw.isspace():
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        body = jsonx.loads_exact(raw)
    except jsonx.TooDeep:
        raise InvalidRequest(f"The JSON body is nested more than {jsonx.MAX_DEPTH} levels deep.") from None
    except ValueError:
        raise InvalidRequest("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


async def resolve(request: web.Request) -> None:
    """An inference request: its parsed body and the model's chain of targets, or a 4xx."""
    body = request[BODY] = await read_json_object(request)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    request[CHAIN] = await request[RUNTIME].router.chain(request[PRINCIPAL].policy, model)
