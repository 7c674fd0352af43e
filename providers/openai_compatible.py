"""Any OpenAI-compatible server: OpenAI, vLLM, Ollama's /v1, LM Studio, Groq, ...

The request passes through unchanged except for ``model``; streams ask for the usage chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import hdrs

from gateway import jsonx
from gateway.config import ProviderConfig
from providers.base import ModelInfo, Provider, ProviderError, StreamBatch, UpstreamInvalid, WireFormat, stream_error
from providers.transport import http, sse
from providers.transport.listing import get_json

PATHS = {"chat": "/chat/completions", "completions": "/completions", "embeddings": "/embeddings"}
RESULT_KEY = {"chat": "choices", "completions": "choices", "embeddings": "data"}


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

    async def infer_stream(self, endpoint: str, body: dict[str, Any], model: str) -> AsyncIterator[StreamBatch]:
        options = body.get("stream_options")
        options = {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
        payload = {**body, "model": model, "stream": True, "stream_options": options}
        resp, ends_at = await http.send(self, self._url(endpoint, model), jsonx.dumps(payload), self._headers)
        reader = sse.EventReader(resp, self.config.timeouts.idle, ends_at)
        try:
            await http.check_status(resp, self.secret)
            if resp.content_type != "text/event-stream":
                raise UpstreamInvalid(f"expected an event stream, got {resp.content_type or 'no content type'}")
            while (events := await reader.batch()) is not None:
                batch, failure = _batch(events)
                if batch.chunks or batch.done:
                    yield batch  # what arrived intact goes out before any failure behind it
                if failure is not None:
                    raise self.scrubbed(failure)
                if batch.done:
                    return
        finally:
            reader.close()
            resp.release()
        raise UpstreamInvalid("stream ended without [DONE]")

    def _url(self, endpoint: str, model: str) -> str:
        return self._urls[endpoint]


#: no default base_url: there is no one OpenAI-compatible server
WIRE_FORMAT = WireFormat("openai", OpenAICompatProvider)


def _batch(events: list[bytes]) -> tuple[StreamBatch, ProviderError | None]:
    """The chunks of one read up to ``[DONE]`` or the first bad event, and the failure if any."""
    batch = StreamBatch([])
    for data in events:
        if data == b"[DONE]":
            batch.done = True
            break
        try:
            batch.chunks.append(_chunk(data))
        except ProviderError as exc:
            return batch, exc
    return batch, None


def _chunk(data: bytes) -> dict[str, Any]:
    try:
        chunk = jsonx.loads(data)
    except ValueError:
        raise UpstreamInvalid("malformed stream chunk") from None
    if not isinstance(chunk, dict):
        raise UpstreamInvalid("malformed stream chunk")
    if chunk.get("error"):
        err = chunk["error"]
        raise stream_error(err.get("message") if isinstance(err, dict) else err)
    return chunk
