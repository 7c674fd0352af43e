"""``GET /admin/api/usage``: the rows ``localrouter usage --json`` prints (the same store query,
:meth:`UsageStore.summary`), as JSON or as CSV."""

from __future__ import annotations

import csv
import io
import time

from aiohttp import web
from aiohttp_apigami import docs, response_schema

from gateway.api.admin import params, records, schemas
from gateway.api.answers import AUTH, json_answer
from gateway.errors import InvalidRequest
from gateway.observability.usage import GROUPS, SUMMARY_COLUMNS, UsageStore

WEEK = 7 * 86400  # the default range, as the CLI's --since 7d
# a spreadsheet reads a cell starting with one of these as a formula; any client names tools and models
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """A cell as a spreadsheet shows it: text that would start a formula gets a leading ``'`` (OWASP's
    advice against CSV injection); null is an empty cell; numbers are left alone."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv(by: str, rows: list[dict]) -> web.Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow((by, *SUMMARY_COLUMNS))
    for row in rows:
        writer.writerow([_cell(row[k]) for k in (by, *SUMMARY_COLUMNS)])
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="usage-by-{by}.csv"'},
    )


@docs(
    tags=["admin"],
    summary="Usage by client, model, provider, day or MCP tool over a range (as `localrouter usage --json`)",
    security=AUTH,
    parameters=[
        {"in": "query", "name": "by", "required": False, "schema": {"type": "string", "enum": list(GROUPS)}},
        {"in": "query", "name": "since", "required": False, "schema": {"type": "number", "minimum": 0}},
        {"in": "query", "name": "until", "required": False, "schema": {"type": "number", "minimum": 0}},
        {"in": "query", "name": "format", "required": False, "schema": {"type": "string", "enum": ["json", "csv"]}},
    ],
    responses={**schemas.errors(400, 503)},
)
@response_schema(schemas.AdminUsageSchema, 200, description="JSON; with `format=csv`, the same rows as text/csv")
async def usage(request: web.Request) -> web.Response:
    by = params.choice(request, "by", GROUPS, "client") or "client"
    since = params.timestamp(request, "since", time.time() - WEEK) or 0.0
    until = params.timestamp(request, "until", None)
    form = params.choice(request, "format", ("json", "csv"), "json")
    if until is not None and until <= since:
        raise InvalidRequest("'until' must be after 'since'.", param="until")

    def query(store: UsageStore) -> list[dict]:
        return store.summary(since, by) if until is None else store.summary(since, by, until)

    rows = await records.read(request, query) or []
    if form == "csv":
        return _csv(by, rows)
    return json_answer({"by": by, "since": since, "until": until, "rows": rows, "records": records.enabled(request)})
