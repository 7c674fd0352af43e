"""Any OpenAI-compatible server: OpenAI, vLLM, Ollama's /v1, LM Studio, Groq, ...

The request passes through unchanged except for ``model``; chat and completions streams ask for the
usage chunk. ``responses`` (OpenAI's Responses API, for a provider whose ``endpoints`` list it) answers
a response object, and streams its typed events, passed on parsed (:class:`ResponsesEvents`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import aiohttp
from aiohttp import hdrs

from gateway import jsonx
from gateway.config import ProviderConfig
from providers.base import ModelInfo, Provider, StreamBatch, StreamParser, UpstreamInvalid, WireFormat, stream_error
from providers.transport import http
from providers.transport.listing import get_json

PATHS = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
    "responses": "/responses",
}
RESULT_KEY = {"chat": "choices", "completions": "choices", "embeddings": "data", "responses": "output"}


class OpenAICompatProvider(Provider):
    capabilities = frozenset(PATHS)

    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        self._headers: dict[str, str] = {hdrs.CONTENT_TYPE: "application/json"}
        if self.secret is not None:
            self._headers[hdrs.AUTHORIZATION] = f"Bearer {self.secret}"
        self._urls = {endpoint: config.base_url + path for endpoint, path in PATHS.items()}

    async def list_models(self) -> list[ModelInfo]:
        doc = await get_json(self, f"{self.config.base_url}/models", self._headers)
        items = doc.get("data")
        if not isinstance(items, list):
            raise UpstreamInvalid("model list has no 'data' array")
        return [
            ModelInfo(str(m["id"]), m.get("created") if isinstance(m.get("created"), int) else None)
            for m in items
            if isinstance(m, dict) and m.get("id")
        ]

    async def infer(self, endpoint: str, body: dict[str, Any], model: str) -> dict[str, Any]:
        raw = await http.fetch(self, self._url(endpoint, model), jsonx.dumps({**body, "model": model}), self._headers)
        doc = http.parse_json(raw)
        if not isinstance(doc, dict) or not isinstance(doc.get(RESULT_KEY[endpoint]), list):
            raise UpstreamInvalid(f"response has no '{RESULT_KEY[endpoint]}' array")
        return jsonx.answer(doc, raw)

    def stream_request(self, endpoint: str, body: dict[str, Any], model: str) -> tuple[str, bytes, Mapping[str, str]]:
        options = body.get("stream_options")
        options = {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
        payload = {**body, "model": model, "stream": True, "stream_options": options}
        return self._url(endpoint, model), jsonx.dumps(payload), self._headers

    def stream_parser(self, model: str) -> StreamParser:
        return CHUNKS

    def infer_stream(self, endpoint: str, body: dict[str, Any], model: str) -> AsyncGenerator[StreamBatch, None]:
        if endpoint != "responses":
            return super().infer_stream(endpoint, body, model)
        # the Responses API's stream has its own events and no usage chunk to ask for
        payload = jsonx.dumps({**body, "model": model, "stream": True})
        return self.read_stream(self._url(endpoint, model), payload, self._headers, ResponsesEvents())

    def _url(self, endpoint: str, model: str) -> str:
        return self._urls[endpoint]


class _Chunks(StreamParser):
    """OpenAI's own chunks, each event one, passed on as they are; the answer ends at ``[DONE]``."""

    __slots__ = ()

    def take(self, data: bytes, out: list[dict[str, Any]]) -> bool:
        if data == b"[DONE]":
            return True
        try:
            chunk = jsonx.loads(data)
        except ValueError:
            raise UpstreamInvalid("malformed stream chunk") from None
        if not isinstance(chunk, dict):
            raise UpstreamInvalid("malformed stream chunk")
        if chunk.get("error"):
            err = chunk["error"]
            raise stream_error(err.get("message") if isinstance(err, dict) else err)
        out.append(chunk)
        return False

    def end(self) -> list[dict[str, Any]]:
        raise UpstreamInvalid("stream ended without [DONE]")


CHUNKS = _Chunks()  # it keeps no state: one serves every stream

#: the events that end a Responses stream: each carries the whole response
RESPONSE_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesEvents(StreamParser):
    """The Responses API's typed events, each one passed on as it is (a dict with its ``type``); the
    answer ends with the event that carries the final response. An ``error`` event is a failure."""

    __slots__ = ()

    def take(self, data: bytes, out: list[dict[str, Any]]) -> bool:
        if data == b"[DONE]":  # not OpenAI's, but a server may end with it as its chat streams do
            return True
        try:
            event = jsonx.loads(data)
        except ValueError:
            raise UpstreamInvalid("malformed stream event") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise UpstreamInvalid("malformed stream event")
        if event["type"] == "error":
            raise stream_error(event.get("message") or event.get("code"))
        out.append(event)
        return event["type"] in RESPONSE_ENDS


#: no default base_url: there is no one OpenAI-compatible server
WIRE_FORMAT = WireFormat("openai", OpenAICompatProvider)
