"""Google's Gemini API (``{base_url}/v1beta/models/{model}:generateContent``, ``:streamGenerateContent
?alt=sse``, ``:embedContent``, ``:batchEmbedContents``) behind OpenAI's chat completions and embeddings.

The key goes in the ``x-goog-api-key`` header, never in the URL. Tool parameters and JSON schemas go
as ``parametersJsonSchema`` / ``responseJsonSchema`` (full JSON Schema). What does not translate:
``n > 1`` and ``logprobs`` are refused (400); ``logit_bias`` and ``user`` are not sent; image URLs
must be data URLs (Gemini reads only inline data or its own uploaded files); token-array embedding
inputs are refused; embeddings report no usage (0).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import hdrs

from providers import openai_shapes as tr
from providers.base import ModelInfo, UpstreamInvalid, WireFormat, stream_error
from providers.native import StreamTranslator, TranslatingProvider
from providers.transport.listing import get_json

TYPE = "gemini"
SAMPLING = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
)
FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "stop",
    "OTHER": "stop",
    "MALFORMED_FUNCTION_CALL": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}


class GeminiProvider(TranslatingProvider):
    capabilities = frozenset({"chat", "embeddings"})

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {hdrs.CONTENT_TYPE: "application/json"}
        if self.secret is not None:
            headers["x-goog-api-key"] = self.secret
        return headers

    def url(self, endpoint: str, model: str, stream: bool, body: dict[str, Any]) -> str:
        base = f"{self.config.base_url}/v1beta/models/{quote(model, safe='')}"
        if endpoint == "embeddings":
            return base + (":batchEmbedContents" if isinstance(body.get("input"), list) else ":embedContent")
        return base + (":streamGenerateContent?alt=sse" if stream else ":generateContent")

    async def list_models(self) -> list[ModelInfo]:
        doc = await get_json(self, self.config.base_url + "/v1beta/models?pageSize=1000", self.headers())
        return [
            ModelInfo(str(m["name"]).removeprefix("models/"))
            for m in doc.get("models", [])
            if isinstance(m, dict) and m.get("name")
        ]

    def payload(self, endpoint: str, body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
        if endpoint == "embeddings":
            return _embedding_request(body, model)
        tr.check_common(TYPE, body)
        system, contents = _contents(body.get("messages") or [])
        out: dict[str, Any] = {"contents": contents}
        if system:
            out["systemInstruction"] = {"parts": [{"text": system}]}
        config = tr.sampling(body, SAMPLING, max_tokens_key="maxOutputTokens", stop_key="stopSequences")
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_object":
            config["responseMimeType"] = "application/json"
        elif isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema")
            config["responseMimeType"] = "application/json"
            if isinstance(schema, dict):
                config["responseJsonSchema"] = schema
        elif isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
            raise tr.unsupported(TYPE, "response_format", f"response_format {fmt.get('type')!r}")
        if config:
            out["generationConfig"] = config
        tools, choice = body.get("tools"), body.get("tool_choice")
        if tools:
            out["tools"] = [{"functionDeclarations": [_declaration(t, f"tools[{i}]") for i, t in enumerate(tools)]}]
            if choice is not None:
                out["toolConfig"] = {"functionCallingConfig": _calling_config(choice)}
        return out

    def answer(self, endpoint: str, doc: dict[str, Any], model: str) -> dict[str, Any]:
        if endpoint == "embeddings":
            embeddings = (
                [tr.obj(doc.get("embedding"), "'embedding'")]
                if "embedding" in doc
                else tr.objects(doc, "embeddings", required=True)
            )
            vectors = [tr.need(e, "values", list) for e in embeddings]
            return {
                "object": "list",
                "model": model,
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
                "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            }
        candidates = tr.objects(doc, "candidates")
        if not candidates:
            if tr.opt(doc, "promptFeedback", dict, {}).get("blockReason"):  # the prompt itself was blocked
                return tr.answer(
                    tr.opt(doc, "responseId", str, "") or tr.completion_id(),
                    model,
                    "",
                    [],
                    "content_filter",
                    _usage(doc.get("usageMetadata")),
                )
            raise UpstreamInvalid("answer has no candidates")
        text, calls = _read_parts(candidates[0])
        finish = "tool_calls" if calls else tr.finish(FINISH, candidates[0].get("finishReason") or "STOP")
        return tr.answer(
            tr.opt(doc, "responseId", str, "") or tr.completion_id(),
            model,
            "".join(text),
            [
                tr.tool_call(None, tr.opt(fc, "id", str, "") or tr.call_id(), name, fc.get("args") or {})
                for name, fc in calls
            ],
            finish,
            _usage(doc.get("usageMetadata")),
        )

    def translator(self, model: str) -> StreamTranslator:
        return _Stream(model)


WIRE_FORMAT = WireFormat(TYPE, GeminiProvider, "https://generativelanguage.googleapis.com")


def _usage(meta: Any) -> dict[str, int]:
    meta = meta if isinstance(meta, dict) else {}
    completion = tr.opt(meta, "candidatesTokenCount", int, 0) + tr.opt(meta, "thoughtsTokenCount", int, 0)
    return tr.usage(meta.get("promptTokenCount"), completion)


def _read_parts(candidate: dict[str, Any]) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    """A candidate's text pieces (thoughts left out) and its function calls (name, call)."""
    text, calls = [], []
    for part in tr.objects(tr.opt(candidate, "content", dict, {}), "parts"):
        if "text" in part and not part.get("thought"):
            text.append(tr.need(part, "text", str))
        elif "functionCall" in part:
            call = tr.obj(part["functionCall"], "'functionCall'")
            calls.append((tr.need(call, "name", str), call))
    return text, calls


def _embedding_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    value = body.get("input")
    extra: dict[str, Any] = {}
    if isinstance(body.get("dimensions"), int):
        extra["outputDimensionality"] = body["dimensions"]
    if isinstance(value, str):
        return {"content": {"parts": [{"text": value}]}, **extra}
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return {"requests": [{"model": f"models/{model}", "content": {"parts": [{"text": v}]}, **extra} for v in value]}
    raise tr.unsupported(TYPE, "input", "Embedding input other than strings (token arrays)")


def _declaration(tool: Any, param: str) -> dict[str, Any]:
    if (
        not isinstance(tool, dict)
        or tool.get("type", "function") != "function"
        or not isinstance(tool.get("function"), dict)
        or not isinstance(tool["function"].get("name"), str)
    ):
        raise tr.invalid(param, f"'{param}' must be a function tool with a name.")
    fn = tool["function"]
    out: dict[str, Any] = {"name": fn["name"]}
    if fn.get("description"):
        out["description"] = fn["description"]
    if fn.get("parameters"):
        out["parametersJsonSchema"] = fn["parameters"]
    return out


def _calling_config(choice: Any) -> dict[str, Any]:
    if choice in ("auto", "none"):
        return {"mode": choice.upper()}
    if choice == "required":
        return {"mode": "ANY"}
    if isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        return {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
    raise tr.invalid("tool_choice", "'tool_choice' must be none, auto, required or a named function.")


def _parts(content: Any, param: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise tr.invalid(param, f"'{param}' must be a string or an array of content parts.")
    parts = []
    for i, part in enumerate(content):
        p = f"{param}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"text": part["text"]})
        elif kind == "image_url":
            inline = tr.data_url(tr.image_url_of(part, p), p)
            if inline is None:
                raise tr.unsupported(TYPE, p, "An image by http URL (send it as a data URL)")
            parts.append({"inlineData": {"mimeType": inline[0], "data": inline[1]}})
        else:
            raise tr.unsupported(TYPE, p, f"Content part type {kind!r}")
    return parts


def _contents(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    system: list[str] = []
    turns = tr.Turns("parts")
    push = turns.push
    names: dict[str, str] = {}  # tool call id -> function name: Gemini's responses go by name
    for i, m in enumerate(messages):
        role, param = m.get("role"), f"messages[{i}]"
        if role in ("system", "developer"):
            system.append(tr.text_of(m.get("content"), f"{param}.content"))
        elif role == "user":
            push("user", _parts(m.get("content"), f"{param}.content"))
        elif role == "assistant":
            parts = _parts(m.get("content"), f"{param}.content")
            for j, call in enumerate(m.get("tool_calls") or []):
                name = tr.call_name(call, f"{param}.tool_calls[{j}]")
                if isinstance(call.get("id"), str):
                    names[call["id"]] = name
                parts.append(
                    {"functionCall": {"name": name, "args": tr.arguments_of(call, f"{param}.tool_calls[{j}]")}}
                )
            push("model", parts)
        elif role == "tool":
            answered = m.get("tool_call_id")
            answerer = (names.get(answered) if isinstance(answered, str) else None) or m.get("name")
            if not isinstance(answerer, str):
                raise tr.invalid(f"{param}.tool_call_id", "A tool message must answer a tool call made earlier.")
            push(
                "user",
                [
                    {
                        "functionResponse": {
                            "name": answerer,
                            "response": {"result": tr.text_of(m.get("content"), f"{param}.content")},
                        }
                    }
                ],
            )
        else:
            raise tr.unsupported(TYPE, f"{param}.role", f"Message role {role!r}")
    return "\n\n".join(s for s in system if s), turns.out


class _Stream(StreamTranslator):
    """Each SSE event is a whole GenerateContentResponse holding the next piece. The stream has no end
    event, so the answer finishes where the stream ends, once some event has given a finishReason.
    Google's own recorded streams give one on every event, so a finishReason does not end the answer.
    The last usageMetadata is the total."""

    def __init__(self, model: str) -> None:
        self.chunks = tr.Chunks(model)
        self.started = False
        self.calls = 0
        self.usage = tr.usage(0, 0)
        self.reason: str | None = None  # the latest finishReason

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if "error" in event:
            err = event["error"]
            raise stream_error(err.get("message") if isinstance(err, dict) else err)
        out = []
        if not self.started:
            self.started = True
            self.chunks.id = tr.opt(event, "responseId", str, "") or self.chunks.id
            out.append(self.chunks.delta({"role": "assistant", "content": ""}))
        if event.get("usageMetadata"):
            self.usage = _usage(event["usageMetadata"])
        candidates = tr.objects(event, "candidates")
        if not candidates:
            if tr.opt(event, "promptFeedback", dict, {}).get("blockReason"):
                out += [self.chunks.delta({}, "content_filter"), self.chunks.usage(self.usage)]
                self.done = True
            return out
        text, calls = _read_parts(candidates[0])
        out += [self.chunks.delta({"content": piece}) for piece in text if piece]
        for name, fc in calls:
            call = tr.tool_call(self.calls, tr.opt(fc, "id", str, "") or tr.call_id(), name, fc.get("args") or {})
            self.calls += 1
            out.append(self.chunks.delta({"tool_calls": [call]}))
        reason = candidates[0].get("finishReason")
        if reason:
            self.reason = reason
        return out

    def end(self) -> list[dict[str, Any]]:
        if self.reason is None:
            return super().end()
        finish = "tool_calls" if self.calls else tr.finish(FINISH, self.reason)
        return [self.chunks.delta({}, finish), self.chunks.usage(self.usage)]
