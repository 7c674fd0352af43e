"""Marshmallow schemas of the admin API, for the OpenAPI document only (answers are built as plain dicts).
Times are Unix seconds, money USD (null: unpriced), durations milliseconds."""

from __future__ import annotations

from marshmallow import Schema, fields

from gateway.api.schemas import ErrorSchema

__all__ = ["ErrorSchema"]

_Num = fields.Float
_Int = fields.Integer


def _nullable(field: type[fields.Field], **kwargs: object) -> fields.Field:
    return field(allow_none=True, required=True, **kwargs)  # type: ignore[arg-type]


class AdminLoginSchema(Schema):
    secret = fields.String(required=True, metadata={"description": "An admin client's secret"})


class AdminSessionSchema(Schema):
    client = fields.String(required=True)
    csrf = fields.String(required=True, metadata={"description": "Send as `X-CSRF-Token` with the cookie"})
    expires_at = _Int(required=True)


class AdminSessionStateSchema(Schema):
    client = _nullable(fields.String, metadata={"description": "null: no live session (log in)"})
    csrf = fields.String(metadata={"description": "With a session: send as `X-CSRF-Token` with the cookie"})
    expires_at = _Int(metadata={"description": "With a session: when it ends"})


class AdminPercentilesSchema(Schema):
    p50 = _nullable(_Num)
    p95 = _nullable(_Num)


class AdminBucketSchema(Schema):
    t = _Num(required=True)
    requests = _Int(required=True)
    errors = _Int(required=True)


class AdminTodaySchema(Schema):
    requests = _Int(required=True)
    prompt_tokens = _Int(required=True)
    completion_tokens = _Int(required=True)
    total_tokens = _Int(required=True)
    cost_usd = _nullable(_Num)


class AdminCacheSchema(Schema):
    lookups = _Int(required=True, metadata={"description": "`localrouter_cache_lookups_total`, every result"})
    hits = _Int(required=True)
    hit_ratio = _nullable(_Num, metadata={"description": "hits / lookups; null before the first lookup"})
    bytes = _nullable(_Int, metadata={"description": "`localrouter_cache_bytes`; null with the Redis backend"})


class AdminFirewallCountsSchema(Schema):
    total = _Int(required=True)
    by_action = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class AdminOverviewSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["ok", "degraded", "draining"]})
    version = fields.String(required=True)
    uptime_s = _Num(required=True)
    range = fields.String(required=True)
    series = fields.List(fields.Nested(AdminBucketSchema), required=True)
    requests = _Int(required=True)
    errors = _Int(required=True)
    error_rate = _Num(required=True)
    duration_ms = fields.Nested(AdminPercentilesSchema, required=True)
    ttfb_ms = fields.Nested(AdminPercentilesSchema, required=True)
    today = fields.Nested(AdminTodaySchema, required=True)
    streams_in_flight = _nullable(_Int)
    workers = _Int(required=True, metadata={"description": "Processes: every worker, of every replica with Redis"})
    records = fields.Boolean(
        required=True, metadata={"description": "false: usage records are off (`usage.path: null`), nothing to read"}
    )
    cache = fields.Nested(
        AdminCacheSchema,
        allow_none=True,
        required=True,
        metadata={"description": "The response cache; null when metrics are off or no strategy has `cache`"},
    )
    firewall = fields.Nested(
        AdminFirewallCountsSchema,
        allow_none=True,
        required=True,
        metadata={"description": "`localrouter_firewall_decisions_total` by action; null when metrics are off"},
    )


class AdminBreakerSchema(Schema):
    state = fields.String(required=True, metadata={"enum": ["closed", "open", "probing"]})
    open_until = _nullable(_Num)


class AdminMedianSchema(Schema):
    p50 = _nullable(_Num)


class AdminTargetSchema(Schema):
    id = fields.String(required=True)
    reachable = _nullable(fields.Boolean)
    discovered_at = _nullable(_Num)
    breaker = fields.Nested(AdminBreakerSchema, required=True)
    last_error = _nullable(fields.String)
    latency_ms = fields.Nested(AdminMedianSchema, required=True)


class AdminProviderSchema(Schema):
    name = fields.String(required=True)
    type = fields.String(required=True)
    reachable = _nullable(fields.Boolean, metadata={"description": "The last model discovery worked"})
    discovered_at = _nullable(_Num)
    error = _nullable(fields.String, metadata={"description": "Why the last model discovery failed"})
    targets = fields.List(fields.Nested(AdminTargetSchema), required=True)


class AdminMcpServerSchema(Schema):
    name = fields.String(required=True)
    transport = fields.String(required=True)
    state = fields.String(required=True)
    last_error = _nullable(fields.String)


class AdminPoolTargetSchema(Schema):
    id = fields.String(required=True)
    weight = _nullable(_Num, metadata={"description": "`weighted` pools only"})
    requests = _nullable(
        _Int, metadata={"description": "`localrouter_pool_requests_total` of this pool and target; null: metrics off"}
    )
    breaker = fields.Nested(AdminBreakerSchema, required=True)


class AdminPoolSchema(Schema):
    name = fields.String(required=True)
    id = fields.String(required=True, metadata={"example": "pool/gpt-4o"})
    balance = fields.String(required=True)
    targets = fields.List(fields.Nested(AdminPoolTargetSchema), required=True)


class AdminProvidersSchema(Schema):
    providers = fields.List(fields.Nested(AdminProviderSchema), required=True)
    mcp_servers = fields.List(fields.Nested(AdminMcpServerSchema), required=True)
    pools = fields.List(fields.Nested(AdminPoolSchema), required=True)
    records = fields.Boolean(
        required=True, metadata={"description": "false: usage records are off (`usage.path: null`), nothing to read"}
    )
    store_error = _nullable(
        fields.String, metadata={"description": "The usage store cannot be read now: its numbers are null"}
    )


class AdminResetSchema(Schema):
    target = fields.String(required=True)
    breaker = fields.Nested(AdminBreakerSchema, required=True)


class AdminPeriodSchema(Schema):
    requests = _Int(required=True)
    total_tokens = _Int(required=True)
    cost_usd = _nullable(_Num)


class AdminLimitSchema(Schema):
    name = fields.String(required=True, metadata={"example": "requests_per_minute"})
    used = _nullable(_Num)
    limit = _Num(required=True)


class AdminClientSchema(Schema):
    name = fields.String(required=True)
    strategy = fields.String(required=True)
    enabled = fields.Boolean(required=True)
    admin = fields.Boolean(required=True)
    suspended = fields.Boolean(required=True)
    today = fields.Nested(AdminPeriodSchema, required=True, allow_none=True, metadata={"description": "null: unknown"})
    month = fields.Nested(AdminPeriodSchema, required=True, allow_none=True, metadata={"description": "null: unknown"})
    limits = fields.List(fields.Nested(AdminLimitSchema), required=True)


class AdminClientsSchema(Schema):
    clients = fields.List(fields.Nested(AdminClientSchema), required=True)
    records = fields.Boolean(
        required=True, metadata={"description": "false: usage records are off (`usage.path: null`), nothing to read"}
    )
    store_error = _nullable(
        fields.String, metadata={"description": "The usage store cannot be read now: its numbers are null"}
    )


class AdminSuspensionSchema(Schema):
    name = fields.String(required=True)
    suspended = fields.Boolean(required=True)


class AdminUsageSchema(Schema):
    by = fields.String(required=True)
    since = _Num(required=True)
    until = _nullable(_Num)
    rows = fields.List(fields.Dict(), required=True, metadata={"description": "as `localrouter usage --json`"})
    records = fields.Boolean(
        required=True, metadata={"description": "false: usage records are off (`usage.path: null`), nothing to read"}
    )


class AdminRequestSchema(Schema):
    id = fields.String(required=True)
    ts = _Num(required=True)
    client = fields.String(required=True)
    endpoint = fields.String(required=True)
    model_requested = _nullable(fields.String)
    model = _nullable(fields.String)
    provider = _nullable(fields.String)
    stream = fields.Boolean(required=True)
    status = _Int(required=True)
    attempts = _Int(required=True)
    prompt_tokens = _Int(required=True)
    completion_tokens = _Int(required=True)
    total_tokens = _Int(required=True)
    cost_usd = _nullable(_Num)
    duration_ms = _Num(required=True)
    ttfb_ms = _nullable(_Num)
    error_code = _nullable(fields.String)
    cached = fields.Boolean(required=True, metadata={"description": "Answered from the response cache"})
    saved_usd = _nullable(_Num, metadata={"description": "A cached answer: what it cost when first served"})


class AdminRequestsSchema(Schema):
    requests = fields.List(fields.Nested(AdminRequestSchema), required=True)
    next = _nullable(fields.String, metadata={"description": "pass as `before` for the next page"})
    records = fields.Boolean(
        required=True, metadata={"description": "false: usage records are off (`usage.path: null`), nothing to read"}
    )


class AdminAuditRecordSchema(Schema):
    id = fields.String(required=True)
    ts = _Num(required=True)
    kind = fields.String(required=True)
    actor = fields.String(required=True)
    client = _nullable(fields.String)
    subject = fields.String(required=True)
    action = fields.String(required=True)
    rule = _nullable(fields.String)
    held_ms = _nullable(_Num)
    detail = _nullable(fields.String)


class AdminAuditSchema(Schema):
    records = fields.List(fields.Nested(AdminAuditRecordSchema), required=True)


_ERRORS = {
    400: "A query parameter is malformed or out of range (`param` names it)",
    401: "Missing or invalid credential (secret, access token or session cookie), or the client is suspended",
    403: "The client is not an admin, or a request made with the session cookie lacks its `X-CSRF-Token`",
    404: "No such client, target or request",
    409: "An admin may not suspend their own client (`cannot_suspend_self`)",
    503: "The usage records (or the shared state) cannot be reached now",
}


def errors(*statuses: int) -> dict[int, dict[str, object]]:
    """The error answers of an admin endpoint, for its ``@docs``: 401 and 403 always, and ``statuses``."""
    return {s: {"schema": ErrorSchema, "description": _ERRORS[s]} for s in sorted({401, 403, *statuses})}
