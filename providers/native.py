"""The frame of every adapter whose upstream speaks its own wire format (Anthropic, Gemini, Ollama):
send, classify failures, and turn answers and streams into OpenAI's shapes. A subclass says only how
to build its request and how to read its answers."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from typing import Any

from gateway import jsonx
from providers import openai_shapes as tr
from providers.base import Provider, ProviderError, StreamBatch, UpstreamInvalid
from providers.transport import http, sse


class StreamTranslator(abc.ABC):
    """One stream's state: each upstream event in, the OpenAI chunks it stands for out."""

    done = False

    @abc.abstractmethod
    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Raise :class:`ProviderError` for an error event, :class:`UpstreamInvalid` for a part of the
        event the format requires that is missing or of the wrong type (see ``providers.openai_shapes``'s
        readers); set ``done`` at the upstream's end. Anything else it raises is a bug of the gateway's."""

    def end(self) -> list[dict[str, Any]]:
        """The chunks that close the answer when the upstream's stream ends before ``done`` was set.
        By default that stream was cut short. A format without an end event overrides this."""
        raise UpstreamInvalid("stream ended before its end event")


class TranslatingProvider(Provider):
    #: "sse" or "ndjson"
    stream_format = "sse"

    @abc.abstractmethod
    def headers(self) -> dict[str, str]: ...

    @abc.abstractmethod
    def url(self, endpoint: str, model: str, stream: bool, body: dict[str, Any]) -> str: ...

    @abc.abstractmethod
    def payload(self, endpoint: str, body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
        """The upstream's request; raises UpstreamRejected (400) for what it cannot honour."""

    @abc.abstractmethod
    def answer(self, endpoint: str, doc: dict[str, Any], model: str) -> dict[str, Any]:
        """The OpenAI answer for the upstream's JSON object; :class:`UpstreamInvalid` for a malformed one,
        raised where the part at fault is read. Anything else it raises is a bug of the gateway's: a 500
        with its traceback in the log, never mistaken for a flaky upstream."""

    @abc.abstractmethod
    def translator(self, model: str) -> StreamTranslator: ...

    async def infer(self, endpoint: str, body: dict[str, Any], model: str) -> dict[str, Any]:
        payload = jsonx.dumps(self.payload(endpoint, body, model, False))
        raw = await http.fetch(self, self.url(endpoint, model, False, body), payload, self.headers())
        try:
            answer = self.answer(endpoint, tr.obj(http.parse_json(raw), "the answer"), model)
        except ProviderError as exc:
            raise self.scrubbed(exc) from None  # the original's reason may hold the key
        if endpoint == "embeddings" and body.get("encoding_format") == "base64":
            return tr.base64_embeddings(answer)
        return answer

    async def infer_stream(self, endpoint: str, body: dict[str, Any], model: str) -> AsyncIterator[StreamBatch]:
        payload = jsonx.dumps(self.payload(endpoint, body, model, True))
        resp, ends_at = await http.send(self, self.url(endpoint, model, True, body), payload, self.headers())
        reader = (sse.EventReader if self.stream_format == "sse" else sse.LineReader)(
            resp, self.config.timeouts.idle, ends_at
        )
        try:
            await http.check_status(resp, self.secret)
            ctype = resp.content_type
            if self.stream_format == "sse" and ctype != "text/event-stream":  # NDJSON comes under several names
                raise UpstreamInvalid(f"expected an event stream, got {ctype or 'no content type'}")
            translator = self.translator(model)
            while (events := await reader.batch()) is not None:
                chunks: list[dict[str, Any]] = []
                failure: ProviderError | None = None
                for data in events:
                    try:
                        chunks.extend(translator.feed(_event(data)))
                    except ProviderError as exc:  # an error event, or a malformed one (read where it is parsed)
                        failure = exc
                        break
                    if translator.done:
                        break
                if chunks or translator.done:
                    yield StreamBatch(chunks, done=translator.done and failure is None)
                if failure is not None:
                    raise self.scrubbed(failure)
                if translator.done:
                    return
            last = translator.end()
        finally:
            reader.close()
            resp.release()
        yield StreamBatch(last, done=True)


def _event(data: bytes) -> dict[str, Any]:
    try:
        event = jsonx.loads(data)
    except ValueError:
        raise UpstreamInvalid("malformed stream event") from None
    return tr.obj(event, "a stream event")
