"""The request's JSON body: read once, for everyone after (permissions, the handler, the access log)."""

from __future__ import annotations

from typing import Any

from aiohttp import hdrs, web

from gateway import jsonx
from gateway.errors import InvalidRequest, UnsupportedMediaType
from gateway.keys import BODY


async def read(request: web.Request) -> None:
    """An inference request: its body, a JSON object, stored on the request; or a 4xx that says what is
    wrong with it."""
    request[BODY] = await _json_object(request)


async def _json_object(request: web.Request) -> dict[str, Any]:
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
