"""Marshmallow schemas of the public API. They document it (``/openapi.json``); requests are not
loaded through them, so the hot path pays nothing for the documentation."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields
from marshmallow.validate import Length, OneOf, Range


class _Open(Schema):
    """OpenAI adds fields often; every one the client sends passes through."""

    class Meta:
        unknown = INCLUDE


class ErrorDetailSchema(Schema):
    message = fields.String(required=True)
    type = fields.String(required=True)
    param = fields.String(allow_none=True, required=True)
    code = fields.String(allow_none=True, required=True)


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)


class ModelSchema(Schema):
    id = fields.String(required=True, metadata={"example": "openai/gpt-4o-mini"})
    object = fields.String(required=True, metadata={"example": "model"})
    created = fields.Integer(required=True)
    owned_by = fields.String(required=True, metadata={"example": "openai"})


class ModelListSchema(Schema):
    object = fields.String(required=True, metadata={"example": "list"})
    data = fields.List(fields.Nested(ModelSchema), required=True)


class UsageSchema(_Open):
    prompt_tokens = fields.Integer()
    completion_tokens = fields.Integer()
    total_tokens = fields.Integer()


# Request fields: what is declared here with a type, bounds or a length is also what the gateway
# rejects with 400 before calling any upstream (gateway.api.validation compiles these schemas into its
# checks). Optional fields accept null, as OpenAI does.


class ChatMessageSchema(_Open):
    role = fields.String(required=True, metadata={"example": "user"})
    content = fields.Raw(allow_none=True, metadata={"description": "A string or an array of content parts."})
    name = fields.String(allow_none=True)
    tool_calls = fields.List(fields.Dict(), allow_none=True)
    tool_call_id = fields.String(allow_none=True)


def _model() -> fields.String:
    return fields.String(
        required=True,
        validate=Length(min=1),
        metadata={"description": "A `provider/model` id from `GET /models`, or `localrouter/auto`."},
    )


class _Sampling(_Open):
    model = _model()
    temperature = fields.Float(allow_none=True, validate=Range(0, 2))
    top_p = fields.Float(allow_none=True, validate=Range(0, 1))
    max_tokens = fields.Integer(allow_none=True, validate=Range(min=1))
    stop = fields.Raw(allow_none=True, metadata={"description": "A string or an array of up to 4 strings."})
    stream = fields.Boolean(allow_none=True, metadata={"description": "Answer as Server-Sent Events."})
    stream_options = fields.Dict(allow_none=True)
    n = fields.Integer(allow_none=True, validate=Range(1, 128))
    presence_penalty = fields.Float(allow_none=True, validate=Range(-2, 2))
    frequency_penalty = fields.Float(allow_none=True, validate=Range(-2, 2))
    seed = fields.Integer(allow_none=True)
    user = fields.String(allow_none=True)


class ChatCompletionRequestSchema(_Sampling):
    messages = fields.List(fields.Nested(ChatMessageSchema), required=True, validate=Length(min=1))
    max_completion_tokens = fields.Integer(allow_none=True, validate=Range(min=1))
    tools = fields.List(fields.Dict(), allow_none=True)
    tool_choice = fields.Raw(allow_none=True, metadata={"description": "`none`, `auto`, `required`, or an object."})
    response_format = fields.Dict(allow_none=True)


class ChatChoiceSchema(_Open):
    index = fields.Integer()
    message = fields.Nested(ChatMessageSchema)
    finish_reason = fields.String(allow_none=True)


# Response fields marked required are the ones OpenAI's own schema requires (generated clients rely on them).


class ChatCompletionSchema(_Open):
    id = fields.String(required=True)
    object = fields.String(required=True, metadata={"example": "chat.completion"})
    created = fields.Integer(required=True)
    model = fields.String(required=True, metadata={"description": "The `provider/model` that served the request."})
    choices = fields.List(fields.Nested(ChatChoiceSchema), required=True)
    usage = fields.Nested(UsageSchema)


class CompletionRequestSchema(_Sampling):
    prompt = fields.Raw(required=True, metadata={"description": "A string or an array of strings."})
    echo = fields.Boolean(allow_none=True)
    suffix = fields.String(allow_none=True)


class CompletionChoiceSchema(_Open):
    index = fields.Integer()
    text = fields.String()
    finish_reason = fields.String(allow_none=True)
    logprobs = fields.Dict(allow_none=True)


class CompletionSchema(_Open):
    id = fields.String(required=True)
    object = fields.String(required=True, metadata={"example": "text_completion"})
    created = fields.Integer(required=True)
    model = fields.String(required=True)
    choices = fields.List(fields.Nested(CompletionChoiceSchema), required=True)
    usage = fields.Nested(UsageSchema)


class EmbeddingRequestSchema(_Open):
    model = _model()
    input = fields.Raw(required=True, metadata={"description": "A string or an array of strings or tokens."})
    encoding_format = fields.String(allow_none=True, validate=OneOf(["float", "base64"]))
    dimensions = fields.Integer(allow_none=True, validate=Range(min=1))
    user = fields.String(allow_none=True)


class EmbeddingSchema(_Open):
    object = fields.String(required=True, metadata={"example": "embedding"})
    index = fields.Integer(required=True)
    embedding = fields.Raw(
        required=True,
        metadata={
            "oneOf": [{"type": "array", "items": {"type": "number"}}, {"type": "string"}],
            "description": "The vector; with `encoding_format: base64`, its little-endian float32 bytes in base64.",
        },
    )


class EmbeddingListSchema(_Open):
    object = fields.String(required=True, metadata={"example": "list"})
    data = fields.List(fields.Nested(EmbeddingSchema), required=True)
    model = fields.String(required=True)
    usage = fields.Nested(UsageSchema)


class TargetHealthSchema(Schema):
    target = fields.String(required=True)
    state = fields.String(required=True, metadata={"enum": ["closed", "cooling_down", "half_open"]})
    consecutive_failures = fields.Integer(required=True)
    retry_in_seconds = fields.Float()


class ProviderFailureSchema(Schema):
    provider = fields.String(required=True)
    error = fields.String(required=True, metadata={"example": "cannot connect (connection refused)"})


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok", "enum": ["ok", "degraded", "draining"]})
    pid = fields.Integer(metadata={"description": "With `detail=1`: the worker process that answered."})
    version = fields.String(required=True)
    uptime_seconds = fields.Float(required=True)
    providers = fields.Integer(required=True, metadata={"description": "Configured providers."})
    clients = fields.Integer(required=True, metadata={"description": "Configured clients."})
    state = fields.Dict(
        required=True,
        metadata={
            "description": "The budget state backend: `{backend, ok}` (`status` is `degraded` while it is unreachable)."
        },
    )
    usage_store = fields.Dict(
        metadata={
            "description": "The usage records' store, when they are on: `{backend, ok}`, and while records cannot be "
            "written `error`, `pending`, `dropped` (`status` is `degraded`)."
        },
    )
    providers_unreachable = fields.List(
        fields.Nested(ProviderFailureSchema),
        required=True,
        metadata={"description": "Providers whose model discovery failed last time, and why (`status` is `degraded`)."},
    )
    provider_names = fields.List(fields.String(), metadata={"description": "With `detail=1`."})
    targets = fields.List(
        fields.Nested(TargetHealthSchema),
        metadata={"description": "With `detail=1`: targets that failed lately, cool down, or are being probed."},
    )


class GenerationSchema(Schema):
    object = fields.String(required=True, metadata={"example": "generation"})
    id = fields.String(required=True)
    ts = fields.Float(required=True)
    client = fields.String(required=True)
    endpoint = fields.String(required=True)
    model_requested = fields.String(allow_none=True)
    model = fields.String(allow_none=True, metadata={"description": "The `provider/model` that served it."})
    provider = fields.String(allow_none=True)
    stream = fields.Boolean(required=True)
    status = fields.Integer(required=True)
    prompt_tokens = fields.Integer(required=True)
    completion_tokens = fields.Integer(required=True)
    total_tokens = fields.Integer(required=True)
    cost_usd = fields.Float(allow_none=True, metadata={"description": "null: the model has no price"})
    duration_ms = fields.Float(required=True)
    ttfb_ms = fields.Float(allow_none=True)
    attempts = fields.Integer(required=True)
    error_code = fields.String(
        allow_none=True,
        metadata={
            "description": "The error's code when the request failed; a stream that broke after its 200 has "
            "`stream_interrupted` (or the code of the error event that ended it)."
        },
    )
    cached = fields.Boolean(metadata={"description": "Answered from the response cache: no upstream call, cost 0"})
    saved_usd = fields.Float(
        allow_none=True, metadata={"description": "A cached answer: what it cost when first served (null: no price)"}
    )


# Anthropic's Messages API. Bodies go to Anthropic upstreams as sent, so only what the gateway itself reads
# is declared; every other field passes (gateway.dialects.messages_request says what translates).


class AnthropicErrorDetailSchema(Schema):
    type = fields.String(required=True, metadata={"example": "invalid_request_error"})
    message = fields.String(required=True)


class AnthropicErrorSchema(Schema):
    type = fields.String(required=True, metadata={"example": "error"})
    error = fields.Nested(AnthropicErrorDetailSchema, required=True)
    request_id = fields.String()


class CountTokensRequestSchema(_Open):
    model = _model()
    messages = fields.List(fields.Dict(), required=True, metadata={"description": "Anthropic's messages."})
    system = fields.Raw(metadata={"description": "A string or an array of text blocks."})
    tools = fields.List(fields.Dict())


class MessagesRequestSchema(CountTokensRequestSchema):
    max_tokens = fields.Integer(required=True, validate=Range(min=1))
    stream = fields.Boolean(metadata={"description": "Answer as Anthropic's event stream."})


class MessageSchema(_Open):
    id = fields.String(required=True)
    type = fields.String(required=True, metadata={"example": "message"})
    role = fields.String(required=True, metadata={"example": "assistant"})
    model = fields.String(required=True, metadata={"description": "The `provider/model` that served the request."})
    content = fields.List(fields.Dict(), required=True)
    stop_reason = fields.String(allow_none=True, required=True)
    usage = fields.Dict(required=True)


class TokenCountSchema(_Open):
    input_tokens = fields.Integer(required=True)


class ResponseRequestSchema(_Open):
    """OpenAI's Responses API request (README: "OpenAI Responses: what translates")."""

    model = _model()
    input = fields.Raw(metadata={"description": "A string, or an array of input items."})
    instructions = fields.String(allow_none=True)
    previous_response_id = fields.String(
        allow_none=True, metadata={"description": "A stored response of this client's to continue."}
    )
    store = fields.Boolean(allow_none=True, metadata={"description": "Keep the response (default true)."})
    stream = fields.Boolean(allow_none=True, metadata={"description": "Answer as the Responses API's events."})
    max_output_tokens = fields.Integer(allow_none=True, validate=Range(min=1))
    temperature = fields.Float(allow_none=True)
    top_p = fields.Float(allow_none=True)
    tools = fields.List(fields.Dict(), allow_none=True)
    tool_choice = fields.Raw(allow_none=True)
    metadata = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)


class ResponseUsageSchema(_Open):
    input_tokens = fields.Integer()
    output_tokens = fields.Integer()
    total_tokens = fields.Integer()


class ResponseSchema(_Open):
    id = fields.String(required=True, metadata={"description": "The gateway's own id, for `previous_response_id`."})
    object = fields.String(required=True, metadata={"example": "response"})
    created_at = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"example": "completed"})
    model = fields.String(required=True, metadata={"description": "The `provider/model` that served the request."})
    output = fields.List(fields.Dict(), required=True)
    usage = fields.Nested(ResponseUsageSchema, allow_none=True)


class ResponseDeletedSchema(Schema):
    id = fields.String(required=True)
    object = fields.String(required=True, metadata={"example": "response"})
    deleted = fields.Boolean(required=True)
