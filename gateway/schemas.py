"""Marshmallow schemas of the public API. They document it (``/openapi.json``); requests are not
loaded through them, so the hot path pays nothing for the documentation."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields


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


class ChatMessageSchema(_Open):
    role = fields.String(required=True, metadata={"example": "user"})
    content = fields.Raw(allow_none=True, metadata={"description": "A string or an array of content parts."})
    name = fields.String()
    tool_calls = fields.List(fields.Dict())
    tool_call_id = fields.String()


class _Sampling(_Open):
    model = fields.String(required=True, metadata={
        "description": "A `provider/model` id from `GET /models`, or `localrouter/auto`."})
    temperature = fields.Float()
    top_p = fields.Float()
    max_tokens = fields.Integer()
    stop = fields.Raw(metadata={"description": "A string or an array of up to 4 strings."})
    stream = fields.Boolean(metadata={"description": "Answer as Server-Sent Events."})
    stream_options = fields.Dict()
    n = fields.Integer()
    presence_penalty = fields.Float()
    frequency_penalty = fields.Float()
    seed = fields.Integer()
    user = fields.String()


class ChatCompletionRequestSchema(_Sampling):
    messages = fields.List(fields.Nested(ChatMessageSchema), required=True)
    max_completion_tokens = fields.Integer()
    tools = fields.List(fields.Dict())
    tool_choice = fields.Raw()
    response_format = fields.Dict()


class ChatChoiceSchema(_Open):
    index = fields.Integer()
    message = fields.Nested(ChatMessageSchema)
    finish_reason = fields.String(allow_none=True)


class ChatCompletionSchema(_Open):
    id = fields.String()
    object = fields.String(metadata={"example": "chat.completion"})
    created = fields.Integer()
    model = fields.String(metadata={"description": "The `provider/model` that served the request."})
    choices = fields.List(fields.Nested(ChatChoiceSchema))
    usage = fields.Nested(UsageSchema)


class CompletionRequestSchema(_Sampling):
    prompt = fields.Raw(required=True, metadata={"description": "A string or an array of strings."})
    echo = fields.Boolean()
    suffix = fields.String()


class CompletionChoiceSchema(_Open):
    index = fields.Integer()
    text = fields.String()
    finish_reason = fields.String(allow_none=True)
    logprobs = fields.Dict(allow_none=True)


class CompletionSchema(_Open):
    id = fields.String()
    object = fields.String(metadata={"example": "text_completion"})
    created = fields.Integer()
    model = fields.String()
    choices = fields.List(fields.Nested(CompletionChoiceSchema))
    usage = fields.Nested(UsageSchema)


class EmbeddingRequestSchema(_Open):
    model = fields.String(required=True)
    input = fields.Raw(required=True, metadata={"description": "A string or an array of strings or tokens."})
    encoding_format = fields.String()
    dimensions = fields.Integer()
    user = fields.String()


class EmbeddingSchema(_Open):
    object = fields.String(metadata={"example": "embedding"})
    index = fields.Integer()
    embedding = fields.List(fields.Float())


class EmbeddingListSchema(_Open):
    object = fields.String(metadata={"example": "list"})
    data = fields.List(fields.Nested(EmbeddingSchema))
    model = fields.String()
    usage = fields.Nested(UsageSchema)


class TargetHealthSchema(Schema):
    target = fields.String(required=True)
    state = fields.String(required=True, metadata={"enum": ["closed", "cooling_down", "half_open"]})
    consecutive_failures = fields.Integer(required=True)
    retry_in_seconds = fields.Float()


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})
    version = fields.String(required=True)
    uptime_seconds = fields.Float(required=True)
    providers = fields.Integer(required=True, metadata={"description": "Configured providers."})
    clients = fields.Integer(required=True, metadata={"description": "Configured clients."})
    provider_names = fields.List(fields.String(), metadata={"description": "With `detail=1`."})
    targets = fields.List(fields.Nested(TargetHealthSchema), metadata={
        "description": "With `detail=1`: targets that failed lately, cool down, or are being probed."})
