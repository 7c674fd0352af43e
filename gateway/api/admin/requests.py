"""``GET /admin/api/requests``: the latest usage records, filtered, newest first, a page at a time (the
cursor is the last record's time and id, so a page is stable while new records arrive); and one by id."""

from __future__ import annotations

import base64
import binascii
import re

from aiohttp import web
from aiohttp_apigami import docs, response_schema

from gateway.api.admin import params, records, schemas
from gateway.api.answers import AUTH, json_answer
from gateway.errors import InvalidRequest, NotFound, StoreUnavailable
from gateway.keys import OBSERVER
from gateway.observability.usage import RequestQuery, StoreError, UsageRecord, UsageStore

MAX_LIMIT = 500
_STATUS = re.compile(r"^([1-5])(\d\d|xx)$")


def cursor(record: UsageRecord) -> str:
    return base64.urlsafe_b64encode(f"{record.ts!r}|{record.id}".encode()).decode().rstrip("=")


def _before(text: str | None) -> tuple[float, str] | None:
    if text is None:
        return None
    try:
        ts, sep, rid = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().partition("|")
        if sep and rid:
            return float(ts), rid
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidRequest("'before' must be a `next` cursor from an earlier page.", param="before")


def _status(text: str | None) -> tuple[tuple[int, int] | None, bool]:
    """``200`` (that status), ``4xx`` (that class) or ``error`` (failed: refused, or a stream that failed)."""
    if text is None:
        return None, False
    if text == "error":
        return None, True
    found = _STATUS.match(text)
    if found is None:
        raise InvalidRequest("'status' must be a status like 200, a class like 4xx, or error.", param="status")
    if found[2] == "xx":
        return (int(found[1]) * 100, int(found[1]) * 100 + 99), False
    return (int(text), int(text)), False


_PARAMETERS = [
    {"in": "query", "name": "client", "required": False, "schema": {"type": "string"}},
    {
        "in": "query",
        "name": "model",
        "required": False,
        "schema": {"type": "string"},
        "description": "the model that served (provider/model) or the id asked for (a pool, an alias)",
    },
    {
        "in": "query",
        "name": "status",
        "required": False,
        "schema": {"type": "string", "pattern": "^([1-5](\\d\\d|xx)|error)$"},
        "description": "`200`, `4xx` or `error`",
    },
    {"in": "query", "name": "before", "required": False, "schema": {"type": "string"}, "description": "a `next`"},
    {"in": "query", "name": "limit", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
]


@docs(
    tags=["admin"],
    summary="The latest requests of every client, newest first, filtered and paged",
    security=AUTH,
    parameters=_PARAMETERS,
    responses=schemas.errors(400, 503),
)
@response_schema(schemas.AdminRequestsSchema, 200)
async def requests(request: web.Request) -> web.Response:
    status, failed = _status(request.query.get("status"))
    limit = params.integer(request, "limit", 50, 1, MAX_LIMIT)
    query = RequestQuery(
        params.text(request, "client"),
        params.text(request, "model"),
        status,
        failed,
        _before(request.query.get("before")),
        limit + 1,  # one more says whether there is a next page
    )

    def read(store: UsageStore) -> list[UsageRecord]:
        return store.requests(query)

    found = await records.read(request, read) or []
    page = found[:limit]
    return json_answer(
        {
            "requests": [r.public() for r in page],
            "next": cursor(page[-1]) if len(found) > limit else None,
            "records": records.enabled(request),
        }
    )


@docs(
    tags=["admin"],
    summary="One request by its id (`X-Request-ID`), whichever client made it",
    security=AUTH,
    parameters=[{"in": "path", "name": "id", "required": True, "schema": {"type": "string"}}],
    responses=schemas.errors(404, 503),
)
@response_schema(schemas.AdminRequestSchema, 200)
async def one(request: web.Request) -> web.Response:
    record_id = request.match_info["id"]
    writer = request.app[OBSERVER].usage
    if writer is None:
        raise NotFound(f"No request with id {record_id[:100]!r}: " + records.OFF, param="id", code="records_off")
    try:
        record = await writer.get(record_id)
    except StoreError as exc:
        raise StoreUnavailable(records.UNAVAILABLE) from exc
    if record is None:
        raise NotFound(f"No request with id {record_id[:100]!r}.", param="id")
    return json_answer(record.public())
