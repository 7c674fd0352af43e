"""Ollama's native API (``/api/chat``, ``/api/embed``, NDJSON streams, models from ``/api/tags``),
for what its OpenAI shim lacks: ``options`` and ``keep_alive`` in the request body pass through.

OpenAI parameters map to ``options`` (temperature, top_p, seed, stop, max_tokens -> num_predict,
presence/frequency penalties); an ``options`` object the client sends is merged over them.
``response_format`` json_object / json_schema -> ``format``. What does not translate: ``n > 1`` and
``logprobs`` are refused; images must be data URLs.
"""

from __future__ import annotations

from typing import Any

from aiohttp import hdrs

from providers import openai_shapes as tr
from providers.base import ModelInfo, UpstreamUnavailable, WireFormat, stream_error
from providers.native import StreamTranslator, TranslatingProvider
from providers.transport.listing import get_json

TYPE = "ollama"
FINISH = {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}
OPTIONS = (
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("seed", "seed"),
    ("presence_penalty", "presence_penalty"),
    ("frequency_penalty", "frequency_penalty"),
)


class OllamaProvider(TranslatingProvider):
    capabilities = frozenset({"chat", "embeddings"})
    stream_format = "ndjson"

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {hdrs.CONTENT_TYPE: "application/json"}
        if self.secret is not None:  # an Ollama behind an authenticating proxy
            headers[hdrs.AUTHORIZATION] = f"Bearer {self.secret}"
        return headers

    def url(self, endpoint: str, model: str, stream: bool, body: dict[str, Any]) -> str:
        return self.config.base_url + ("/api/embed" if endpoint == "embeddings" else "/api/chat")

    async def list_models(self) -> list[ModelInfo]:
        doc = await get_json(self, self.config.base_url + "/api/tags", self.headers())
        return [
            ModelInfo(str(m.get("model") or m["name"]))
            for m in doc.get("models", [])
            if isinstance(m, dict) and (m.get("model") or m.get("name"))
        ]

    def payload(self, endpoint: str, body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"model": model}
        if body.get("keep_alive") is not None:
            out["keep_alive"] = body["keep_alive"]
        if endpoint == "embeddings":
            value = body.get("input")
            if not (isinstance(value, str) or isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise tr.unsupported(TYPE, "input", "Embedding input other than strings (token arrays)")
            out["input"] = value
            if isinstance(body.get("dimensions"), int):
                out["dimensions"] = body["dimensions"]
            return out
        tr.check_common(TYPE, body)
        out["messages"] = _messages(body.get("messages") or [])
        out["stream"] = stream
        options = tr.sampling(body, OPTIONS, max_tokens_key="num_predict", stop_key="stop")
        if isinstance(body.get("options"), dict):
            options.update(body["options"])
        if options:
            out["options"] = options
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_object":
            out["format"] = "json"
        elif isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            out["format"] = (fmt.get("json_schema") or {}).get("schema") or "json"
        elif isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
            raise tr.unsupported(TYPE, "response_format", f"response_format {fmt.get('type')!r}")
        if body.get("tools") and body.get("tool_choice") != "none":
            out["tools"] = body["tools"]
        return out

    def answer(self, endpoint: str, doc: dict[str, Any], model: str) -> dict[str, Any]:
        if endpoint == "embeddings":
            vectors = tr.need(doc, "embeddings", list)
            if not all(isinstance(v, list) for v in vectors):
                raise tr.malformed("'embeddings' is not a list of vectors")
            tokens = tr.opt(doc, "prompt_eval_count", int, 0)
            return {
                "object": "list",
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            }
        if doc.get("error"):
            raise UpstreamUnavailable(f"error: {doc['error']}")  # cut and scrubbed as it leaves (infer)
        message = tr.obj(doc.get("message"), "'message'")
        calls = [
            tr.tool_call(None, tr.opt(c, "id", str, "") or tr.call_id(), name, args)
            for name, args, c in _calls(message)
        ]
        finish = "tool_calls" if calls else tr.finish(FINISH, doc.get("done_reason") or "stop")
        return tr.answer(
            tr.completion_id(),
            model,
            tr.text(message, "content"),
            calls,
            finish,
            tr.usage(doc.get("prompt_eval_count"), doc.get("eval_count")),
        )

    def translator(self, model: str) -> StreamTranslator:
        return _Stream(model)


WIRE_FORMAT = WireFormat(TYPE, OllamaProvider, "http://127.0.0.1:11434")


def _calls(message: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """The tool calls of an answer's message: (name, arguments, the call)."""
    out = []
    for call in tr.objects(message, "tool_calls"):
        function = tr.obj(call.get("function"), "a tool call's 'function'")
        out.append((tr.need(function, "name", str), function.get("arguments"), call))
    return out


def _images(content: list[Any], param: str) -> tuple[str, list[str]]:
    text, images = [], []
    for i, part in enumerate(content):
        p = f"{param}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            text.append(part["text"])
        elif kind == "image_url":
            inline = tr.data_url(tr.image_url_of(part, p), p)
            if inline is None:
                raise tr.unsupported(TYPE, p, "An image by http URL (send it as a data URL)")
            images.append(inline[1])
        else:
            raise tr.unsupported(TYPE, p, f"Content part type {kind!r}")
    return "".join(text), images


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    names: dict[str, str] = {}
    for i, m in enumerate(messages):
        role, param = m.get("role"), f"messages[{i}]"
        content = m.get("content")
        item: dict[str, Any] = {"role": "system" if role == "developer" else role}
        if role not in ("system", "developer", "user", "assistant", "tool"):
            raise tr.unsupported(TYPE, f"{param}.role", f"Message role {role!r}")
        if isinstance(content, list):
            item["content"], images = _images(content, f"{param}.content")
            if images:
                item["images"] = images
        else:
            item["content"] = content if isinstance(content, str) else ""
        if role == "assistant" and m.get("tool_calls"):
            calls = []
            for j, call in enumerate(m["tool_calls"]):
                name = tr.call_name(call, f"{param}.tool_calls[{j}]")
                if isinstance(call.get("id"), str):
                    names[call["id"]] = name
                calls.append(
                    {"function": {"name": name, "arguments": tr.arguments_of(call, f"{param}.tool_calls[{j}]")}}
                )
            item["tool_calls"] = calls
        answered = m.get("tool_call_id")
        if role == "tool" and isinstance(answered, str) and answered in names:
            item["tool_name"] = names[answered]
        out.append(item)
    return out


class _Stream(StreamTranslator):
    def __init__(self, model: str) -> None:
        self.chunks = tr.Chunks(model)
        self.started = False
        self.calls = 0

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if event.get("error"):
            raise stream_error(event["error"])
        out = []
        if not self.started:
            self.started = True
            out.append(self.chunks.delta({"role": "assistant", "content": ""}))
        message = tr.obj(event.get("message") or {}, "'message'")
        content = tr.text(message, "content")
        if content:
            out.append(self.chunks.delta({"content": content}))
        for name, args, c in _calls(message):
            call = tr.tool_call(self.calls, tr.opt(c, "id", str, "") or tr.call_id(), name, args)
            self.calls += 1
            out.append(self.chunks.delta({"tool_calls": [call]}))
        if event.get("done"):
            finish = "tool_calls" if self.calls else tr.finish(FINISH, event.get("done_reason") or "stop")
            out += [
                self.chunks.delta({}, finish),
                self.chunks.usage(tr.usage(event.get("prompt_eval_count"), event.get("eval_count"))),
            ]
            self.done = True
        return out
