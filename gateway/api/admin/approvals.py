"""``GET /admin/api/approvals``: the requests the firewall holds for a decision; ``POST
/admin/api/approvals/{id}``: decide one (``allow_once``, ``allow_for`` with ``seconds``, ``allow_always``,
``deny``). With Redis, every process's held requests are listed and a decision reaches whichever holds it."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_apigami import docs

from gateway import jsonx
from gateway.api.answers import AUTH, json_answer
from gateway.errors import InvalidRequest, NotFound
from gateway.firewall import DECISIONS, Decision
from gateway.keys import FIREWALL, PRINCIPAL, RUNTIME

_ERROR = {"$ref": "#/components/schemas/Error"}
_REFUSED = {
    401: {"description": "Missing or invalid secret", "content": {"application/json": {"schema": _ERROR}}},
    403: {"description": "Not an admin client", "content": {"application/json": {"schema": _ERROR}}},
    503: {
        "description": "The approvals store (Redis) cannot be reached (`firewall_unavailable`, see Retry-After)",
        "content": {"application/json": {"schema": _ERROR}},
    },
}
_APPROVAL = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "client": {"type": "string"},
        "what": {"type": "string", "description": "The model id or MCP item (`{server}__{name}`)"},
        "rule": {"type": "string", "description": "The firewall rule's `match`"},
        "since": {"type": "number", "description": "Unix seconds"},
    },
}
#: the longest ``allow_for`` (a year): longer is ``allow_always``'s business
MAX_SECONDS = 365 * 86400


@docs(
    tags=["admin"],
    summary="Requests held by the firewall for a decision",
    security=AUTH,
    responses={
        200: {
            "description": "Oldest first",
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": {"approvals": {"type": "array", "items": _APPROVAL}}}
                }
            },
        },
        **_REFUSED,
    },
)
async def pending(request: web.Request) -> web.Response:
    waiting = await request.app[FIREWALL].waiting()
    return json_answer({"approvals": [a.public() for a in waiting]})


@docs(
    tags=["admin"],
    summary="Decide on a held request",
    security=AUTH,
    parameters=[{"in": "path", "name": "id", "required": True, "schema": {"type": "string"}}],
    requestBody={
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["decision"],
                    "properties": {
                        "decision": {"type": "string", "enum": list(DECISIONS)},
                        "seconds": {"type": "number", "minimum": 1, "description": "For `allow_for`"},
                    },
                }
            }
        },
    },
    responses={
        200: {"description": "Decided", "content": {"application/json": {"schema": _APPROVAL}}},
        400: {"description": "Not a decision", "content": {"application/json": {"schema": _ERROR}}},
        404: {"description": "No such request waiting", "content": {"application/json": {"schema": _ERROR}}},
        **_REFUSED,
    },
)
async def decide(request: web.Request) -> web.Response:
    choice, seconds = _read(await request.read())
    decision = Decision(request.match_info["id"], choice, request[PRINCIPAL].client.name, seconds)
    approval = await request.app[FIREWALL].decide(decision, request[RUNTIME].config)
    if approval is None:
        raise NotFound(f"No request is waiting under the id `{decision.id[:80]}` (decided already, or gone).")
    return json_answer({**approval.public(), "decision": decision.decision, "seconds": decision.seconds})


def _read(raw: bytes) -> tuple[str, float | None]:
    """(decision, seconds) from the body, or a 400 that says what is wrong."""
    try:
        body: Any = jsonx.loads(raw)
    except ValueError:
        raise InvalidRequest("The body must be a JSON object with a `decision`.") from None
    if not isinstance(body, dict) or body.get("decision") not in DECISIONS:
        raise InvalidRequest(f"`decision` must be one of {', '.join(DECISIONS)}.", param="decision")
    decision, seconds = body["decision"], body.get("seconds")
    if decision != "allow_for":
        return decision, None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 1 <= seconds <= MAX_SECONDS:  # NaN too
        raise InvalidRequest(f"`allow_for` takes `seconds`, a number from 1 to {MAX_SECONDS}.", param="seconds")
    return decision, float(seconds)
