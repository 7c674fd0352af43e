"""Checks of a request body before it is forwarded, derived once from the documented schemas.

The marshmallow schemas in gateway.api.schemas document the API; at import, each request schema is
compiled here into a table of cheap per-field rules (JSON type, bounds, non-empty), so what the
OpenAPI document promises to reject is exactly what is rejected, and the hot path pays a dict lookup
per field the client sent instead of a marshmallow load. Unknown fields pass through untouched, and
the upstream stays the judge of everything it alone understands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, fields
from marshmallow import validate as mv

from gateway.api import schemas
from gateway.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str  # JSON type name for messages
    types: tuple[type, ...]
    nullable: bool
    minimum: float | None = None
    maximum: float | None = None
    min_items: int | None = None
    choices: frozenset[Any] | None = None
    items: dict[str, Rule] | None = None  # for an array of objects: the rules of each object
    item_required: tuple[str, ...] = ()  # and the fields each object must have


_KINDS: list[tuple[type[fields.Field], str, tuple[type, ...]]] = [
    (fields.Boolean, "boolean", (bool,)),
    (fields.Integer, "integer", (int,)),
    (fields.Float, "number", (int, float)),
    (fields.String, "string", (str,)),
    (fields.List, "array", (list,)),
    (fields.Dict, "object", (dict,)),
    (fields.Nested, "object", (dict,)),
]


def compile_schema(schema: type[Schema]) -> dict[str, Rule]:
    rules = {}
    for name, field in schema._declared_fields.items():
        kind = next(((k, t) for cls, k, t in _KINDS if isinstance(field, cls)), None)
        if kind is None:  # fields.Raw: any JSON value
            continue
        rule = Rule(kind[0], kind[1], field.allow_none)
        for v in field.validators:
            if isinstance(v, mv.Range):
                rule = _replace(rule, minimum=v.min, maximum=v.max)
            elif isinstance(v, mv.Length):
                rule = _replace(rule, min_items=v.min)
            elif isinstance(v, mv.OneOf):
                rule = _replace(rule, choices=frozenset(v.choices))
        if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            nested = type(field.inner.schema)
            rule = _replace(
                rule,
                items=compile_schema(nested),
                item_required=tuple(n for n, f in nested._declared_fields.items() if f.required),
            )
        rules[name] = rule
    return rules


def _replace(rule: Rule, **changes: Any) -> Rule:
    return Rule(**{**{f: getattr(rule, f) for f in rule.__dataclass_fields__}, **changes})


def check(rules: dict[str, Rule], body: dict[str, Any], prefix: str = "") -> None:
    for name, value in body.items():
        rule = rules.get(name)
        if rule is not None:
            _check_value(rule, value, prefix + name)


def _check_value(rule: Rule, value: Any, param: str) -> None:
    if value is None:
        if not rule.nullable:
            raise InvalidRequest(f"Invalid value for '{param}': null is not allowed.", param=param, code="invalid_type")
        return
    of_type = isinstance(value, rule.types)  # a flag, not a narrowing: the checks below take any JSON value
    if not of_type or (isinstance(value, bool) and bool not in rule.types):
        raise InvalidRequest(
            f"Invalid type for '{param}': expected {rule.kind}, got {_json_type(value)}.",
            param=param,
            code="invalid_type",
        )
    if rule.minimum is not None and value < rule.minimum:
        raise InvalidRequest(
            f"Invalid value for '{param}': {value} is below the minimum of {rule.minimum}.",
            param=param,
            code="invalid_value",
        )
    if rule.maximum is not None and value > rule.maximum:
        raise InvalidRequest(
            f"Invalid value for '{param}': {value} is above the maximum of {rule.maximum}.",
            param=param,
            code="invalid_value",
        )
    if rule.min_items is not None and len(value) < rule.min_items:
        what = "an empty string" if isinstance(value, str) else "empty"
        raise InvalidRequest(f"Invalid value for '{param}': must not be {what}.", param=param, code="invalid_value")
    if rule.choices is not None and value not in rule.choices:
        raise InvalidRequest(
            f"Invalid value for '{param}': expected one of {', '.join(sorted(rule.choices))}.",
            param=param,
            code="invalid_value",
        )
    if rule.items is not None:
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise InvalidRequest(
                    f"Invalid type for '{param}[{i}]': expected object, got {_json_type(item)}.",
                    param=f"{param}[{i}]",
                    code="invalid_type",
                )
            for name in rule.item_required:
                if name not in item:
                    raise InvalidRequest(
                        f"Missing required parameter: '{param}[{i}].{name}'.",
                        param=f"{param}[{i}].{name}",
                        code="missing_required_parameter",
                    )
            check(rule.items, item, f"{param}[{i}].")


def _json_type(value: Any) -> str:
    for types, name in (
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
    ):
        if isinstance(value, types):
            return name
    return "null" if value is None else type(value).__name__


RULES = {
    "chat": compile_schema(schemas.ChatCompletionRequestSchema),
    "completions": compile_schema(schemas.CompletionRequestSchema),
    "embeddings": compile_schema(schemas.EmbeddingRequestSchema),
}
_REQUIRED = {"chat": "messages", "completions": "prompt", "embeddings": "input"}


def _is_text_or_list(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and len(value) > 0)


def validate(endpoint: str, body: dict[str, Any]) -> None:
    field = _REQUIRED[endpoint]
    value = body.get(field)
    if value is None:
        raise InvalidRequest(f"Missing required parameter: '{field}'.", param=field, code="missing_required_parameter")
    check(RULES[endpoint], body)
    if endpoint != "chat" and not _is_text_or_list(value):
        raise InvalidRequest(f"'{field}' must be a string or a non-empty array.", param=field)
    if endpoint == "embeddings" and body.get("stream"):
        raise InvalidRequest("Embeddings cannot be streamed.", param="stream")
