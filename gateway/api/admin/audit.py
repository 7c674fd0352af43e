"""``GET /admin/api/audit``: the operators' actions and the firewall's decisions, newest first (those not
yet written included)."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, response_schema

from gateway.api.admin import params, schemas
from gateway.api.answers import AUTH, json_answer
from gateway.errors import StoreUnavailable
from gateway.keys import OBSERVER
from gateway.observability.usage import AUDIT_KINDS, StoreError

MAX_LIMIT = 1000
_LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
_PARAMETERS = [
    {"in": "query", "name": "kind", "required": False, "schema": {"type": "string", "enum": list(AUDIT_KINDS)}},
    {"in": "query", "name": "limit", "required": False, "schema": _LIMIT},
]


@docs(
    tags=["admin"],
    summary="Audit records: operators' actions (suspend, resume, reset_cooldown) and firewall decisions",
    security=AUTH,
    parameters=_PARAMETERS,
    responses=schemas.errors(400, 503),
)
@response_schema(schemas.AdminAuditSchema, 200)
async def audit(request: web.Request) -> web.Response:
    kind = params.choice(request, "kind", AUDIT_KINDS, None)
    limit = params.integer(request, "limit", 100, 1, MAX_LIMIT)
    writer = request.app[OBSERVER].usage
    try:
        found = await writer.audit(0.0, kind, limit) if writer is not None else []
    except StoreError as exc:
        raise StoreUnavailable("Audit records cannot be reached now; try again later.") from exc
    return json_answer({"records": [r.public() for r in found]})
