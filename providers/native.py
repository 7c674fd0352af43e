"""The frame of every adapter whose upstream speaks its own wire format (Anthropic, Gemini, Ollama):
send, classify failures, and turn answers and stream events into OpenAI's shapes. A subclass says only
how to build its request and how to read its answers and events; the stream loop is every adapter's
(:meth:`providers.base.Provider.infer_stream`)."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

from gateway import jsonx
from providers import openai_shapes as tr
from providers.base import Provider, ProviderError, StreamParser, UpstreamInvalid
from providers.transport import http


class StreamTranslator(StreamParser):
    """One stream's state: each upstream event, a JSON object, in; the OpenAI chunks it stands for out."""

    done = False

    @abc.abstractmethod
    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Raise :class:`ProviderError` for an error event, :class:`UpstreamInvalid` for a part of the
        event the format requires that is missing or of the wrong type (see ``providers.openai_shapes``'s
        readers); set ``done`` at the upstream's end. Anything else it raises is a bug of the gateway's."""

    def take(self, data: bytes, out: list[dict[str, Any]]) -> bool:
        out += self.feed(_event(data))
        return self.done


class TranslatingProvider(Provider):
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

    def stream_request(self, endpoint: str, body: dict[str, Any], model: str) -> tuple[str, bytes, Mapping[str, str]]:
        payload = jsonx.dumps(self.payload(endpoint, body, model, True))
        return self.url(endpoint, model, True, body), payload, self.headers()

    def stream_parser(self, model: str) -> StreamParser:
        return self.translator(model)


def _event(data: bytes) -> dict[str, Any]:
    try:
        event = jsonx.loads(data)
    except ValueError:
        raise UpstreamInvalid("malformed stream event") from None
    return tr.obj(event, "a stream event")
