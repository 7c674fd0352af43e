"""Anthropic's Messages API (``POST {base_url}/v1/messages``) behind OpenAI's chat completions.

What does not translate: ``n > 1``, ``logprobs``, audio are refused (400); ``presence_penalty``,
``frequency_penalty``, ``seed``, ``logit_bias`` have no equivalent and are not sent;
``response_format`` other than text is refused. ``max_tokens`` is required upstream: the client's
``max_tokens`` / ``max_completion_tokens``, else the provider's ``default_max_tokens`` (4096).

A client that speaks the Messages API itself is served natively (:meth:`AnthropicProvider.messages`,
``messages_stream``, ``count_tokens``): its body goes as sent but for ``model``, and Anthropic's answer
and events come back untranslated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import aiohttp
from aiohttp import hdrs

from gateway import jsonx
from gateway.config import ProviderConfig, Reader, TypeOptions
from providers import openai_shapes as tr
from providers.base import (
    ModelInfo,
    ProviderError,
    StreamBatch,
    UpstreamInvalid,
    UpstreamRateLimited,
    WireFormat,
    stream_error,
)
from providers.native import StreamTranslator, TranslatingProvider
from providers.transport import http, sse
from providers.transport.listing import get_json

VERSION = "2023-06-01"
TYPE = "anthropic"
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
}


@dataclass(frozen=True)
class AnthropicOptions(TypeOptions):
    #: ``max_tokens`` is required upstream: sent when the client gives none
    default_max_tokens: int = 4096

    @classmethod
    def read(cls, r: Reader, m: Mapping[str, Any], path: str) -> Self | None:
        if "default_max_tokens" not in m:
            return cls()
        value = r.number(m["default_max_tokens"], f"{path}.default_max_tokens", integer=True)
        return None if value is None else cls(value)


class AnthropicProvider(TranslatingProvider):
    capabilities = frozenset({"chat"})

    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        # a config built in code rather than read may leave its options out: the defaults
        self.options = config.options if isinstance(config.options, AnthropicOptions) else AnthropicOptions()

    def headers(self) -> dict[str, str]:
        headers = {hdrs.CONTENT_TYPE: "application/json", "anthropic-version": VERSION}
        if self.secret is not None:
            headers["x-api-key"] = self.secret
        return headers

    def url(self, endpoint: str, model: str, stream: bool, body: dict[str, Any]) -> str:
        return self.config.base_url + "/v1/messages"

    async def list_models(self) -> list[ModelInfo]:
        doc = await get_json(self, self.config.base_url + "/v1/models?limit=1000", self.headers())
        return [ModelInfo(str(m["id"])) for m in doc.get("data", []) if isinstance(m, dict) and m.get("id")]

    def payload(self, endpoint: str, body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
        tr.check_common(TYPE, body)
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
            raise tr.unsupported(TYPE, "response_format", f"response_format {fmt.get('type')!r}")
        system, messages = _messages(body.get("messages") or [])
        max_tokens = tr.max_tokens(body) or self.options.default_max_tokens
        out: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
        if system:
            out["system"] = system
        out.update(tr.sampling(body, (("temperature", "temperature"), ("top_p", "top_p")), stop_key="stop_sequences"))
        if isinstance(body.get("user"), str):
            out["metadata"] = {"user_id": body["user"]}
        tools = body.get("tools")
        choice = body.get("tool_choice")
        if tools and choice != "none":
            out["tools"] = [_tool(t, f"tools[{i}]") for i, t in enumerate(tools)]
            if choice is not None:
                out["tool_choice"] = _tool_choice(choice, body.get("parallel_tool_calls"))
            elif body.get("parallel_tool_calls") is False:
                out["tool_choice"] = {"type": "auto", "disable_parallel_tool_use": True}
        if stream:
            out["stream"] = True
        return out

    def answer(self, endpoint: str, doc: dict[str, Any], model: str) -> dict[str, Any]:
        if doc.get("type") == "error":
            raise UpstreamInvalid("error object in a 200 answer")
        text, calls = [], []
        for block in tr.objects(doc, "content", required=True):
            if block.get("type") == "text":
                text.append(tr.need(block, "text", str))
            elif block.get("type") == "tool_use":
                calls.append(
                    tr.tool_call(None, tr.need(block, "id", str), tr.need(block, "name", str), block.get("input"))
                )
        return tr.answer(
            tr.opt(doc, "id", str, "") or tr.completion_id(),
            model,
            "".join(text),
            calls,
            tr.finish(FINISH, doc.get("stop_reason")),
            _usage(tr.opt(doc, "usage", dict, {})),
        )

    def translator(self, model: str) -> StreamTranslator:
        return _Stream(model)

    # Native pass-through: a client that speaks the Messages API itself gets Anthropic's own answers.

    def native_headers(self, client: Mapping[str, str]) -> dict[str, str]:
        """The provider's headers, with the client's ``anthropic-version`` and ``anthropic-beta``."""
        headers = self.headers()
        for name in CLIENT_HEADERS:
            if client.get(name):
                headers[name] = client[name]
        return headers

    async def messages(self, body: dict[str, Any], model: str, client: Mapping[str, str]) -> dict[str, Any]:
        """Anthropic's message for a Messages ``body`` sent as it is but for ``model``, as Anthropic sent
        it (the caller puts the model name it shows); ``client``: the request's headers."""
        raw = await http.fetch(
            self, self.config.base_url + "/v1/messages", _native(body, model), self.native_headers(client)
        )
        try:
            doc = tr.obj(http.parse_json(raw), "the answer")
            if doc.get("type") != "message":
                raise tr.malformed("not a message")
        except ProviderError as exc:
            raise self.scrubbed(exc) from None
        return jsonx.answer(doc, raw)

    async def count_tokens(self, body: dict[str, Any], model: str, client: Mapping[str, str]) -> dict[str, Any]:
        """Anthropic's ``{"input_tokens": N}`` for a count_tokens ``body`` sent as it is but for ``model``."""
        url = self.config.base_url + "/v1/messages/count_tokens"
        raw = await http.fetch(self, url, _native(body, model), self.native_headers(client))
        try:
            doc = tr.obj(http.parse_json(raw), "the answer")
            tr.need(doc, "input_tokens", int)
        except ProviderError as exc:
            raise self.scrubbed(exc) from None
        return doc

    async def messages_stream(self, body: dict[str, Any], model: str, client: Mapping[str, str]) -> MessagesStream:
        """Anthropic's event stream for a Messages ``body`` with ``stream: true``, sent as it is but for
        ``model``; raises before returning when the upstream fails at once."""
        url = self.config.base_url + "/v1/messages"
        resp, ends_at = await http.send(self, url, _native(body, model), self.native_headers(client))
        reader = sse.EventReader(resp, self.config.timeouts.idle, ends_at)
        try:
            await http.check_status(resp, self.secret)
            if resp.content_type != "text/event-stream":
                raise UpstreamInvalid(f"expected an event stream, got {resp.content_type or 'no content type'}")
        except BaseException:
            reader.close()
            resp.release()
            raise
        return MessagesStream(self, resp, reader)


#: the client's headers a native request passes on: the API version it speaks and the betas it asked for
CLIENT_HEADERS = ("anthropic-version", "anthropic-beta")
#: the token counts of Anthropic's usage (input_tokens leaves out the cache's: all four are billed apart)
USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _native(body: dict[str, Any], model: str) -> bytes:
    return jsonx.dumps({**body, "model": model})


def messages_usage(use: Any) -> dict[str, int]:
    """The gateway's usage (what records, limits and prices read) for Anthropic's: ``prompt_tokens``
    counts every input token, cached or not, and the cache's part is kept under Anthropic's own names."""
    use = use if isinstance(use, dict) else {}
    out = _usage(use)
    for key in ("cache_creation_input_tokens", "cache_read_input_tokens"):
        if type(use.get(key)) is int:
            out[key] = use[key]
    return out


class MessagesStream:
    """One native stream: Anthropic's events, each parsed (a batch per upstream read, as
    :class:`StreamBatch` ``chunks``; the last batch ``done``, at ``message_stop``), and the usage counts
    they reported so far (``usage``, under Anthropic's names: see :func:`messages_usage`).

    An error event raises the failure it stands for (a fallback is still possible before the first
    batch); events read before it in the same read come first. Ending early: :meth:`aclose`.
    """

    def __init__(self, provider: AnthropicProvider, resp: aiohttp.ClientResponse, reader: sse.EventReader) -> None:
        self._provider, self._resp, self._reader = provider, resp, reader
        self._failure: ProviderError | None = None
        self.usage: dict[str, int] = {}
        self.done = False

    def __aiter__(self) -> MessagesStream:
        return self

    async def __anext__(self) -> StreamBatch:
        if self.done:
            raise StopAsyncIteration
        try:
            batch = await self._next()
        except ProviderError as exc:
            await self.aclose()
            raise self._provider.scrubbed(exc) from None
        except BaseException:  # cancelled: the connection is not left half read
            await self.aclose()
            raise
        if batch.done:
            await self.aclose()
        return batch

    async def aclose(self) -> None:
        self._reader.close()
        self._resp.release()

    async def _next(self) -> StreamBatch:
        if self._failure is not None:
            raise self._failure
        data = await self._reader.batch()
        if data is None:
            raise UpstreamInvalid("stream ended before its end event")
        events: list[dict[str, Any]] = []
        for item in data:
            try:
                event = self._read(item)
            except ProviderError as exc:
                if not events:
                    raise
                self._failure = exc  # after the events that came before it
                break
            events.append(event)
            if event["type"] == "message_stop":
                self.done = True
                break
        return StreamBatch(events, self.done)

    def _read(self, data: bytes) -> dict[str, Any]:
        try:
            event = tr.obj(jsonx.loads(data), "a stream event")
        except ValueError:
            raise UpstreamInvalid("malformed stream event") from None
        kind = tr.need(event, "type", str)
        if kind == "error":
            raise _stream_failure(event.get("error"))
        if kind == "message_start":
            self._count(tr.obj(event.get("message"), "'message'").get("usage"))
        elif kind == "message_delta":
            self._count(event.get("usage"))
        return event

    def _count(self, use: Any) -> None:
        """Anthropic's counts are running totals: a later one replaces an earlier one."""
        if isinstance(use, dict):
            self.usage.update((key, use[key]) for key in USAGE_KEYS if type(use.get(key)) is int)


def _stream_failure(err: Any) -> ProviderError:
    if isinstance(err, dict) and err.get("type") == "rate_limit_error":
        return UpstreamRateLimited("rate limited (in stream)")
    return stream_error((err.get("message") or err) if isinstance(err, dict) else err)


WIRE_FORMAT = WireFormat(TYPE, AnthropicProvider, "https://api.anthropic.com", AnthropicOptions)


def _usage(use: dict[str, Any]) -> dict[str, int]:
    prompt = sum(
        use.get(k) or 0
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        if isinstance(use.get(k), int)
    )
    return tr.usage(prompt, use.get("output_tokens"))


def _tool(tool: Any, param: str) -> dict[str, Any]:
    if (
        not isinstance(tool, dict)
        or tool.get("type", "function") != "function"
        or not isinstance(tool.get("function"), dict)
        or not isinstance(tool["function"].get("name"), str)
    ):
        raise tr.invalid(param, f"'{param}' must be a function tool with a name.")
    fn = tool["function"]
    out = {"name": fn["name"], "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
    if fn.get("description"):
        out["description"] = fn["description"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any]:
    if choice == "auto":
        out: dict[str, Any] = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise tr.invalid("tool_choice", "'tool_choice' must be none, auto, required or a named function.")
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _content(content: Any, param: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise tr.invalid(param, f"'{param}' must be a string or an array of content parts.")
    blocks = []
    for i, part in enumerate(content):
        p = f"{param}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            url = tr.image_url_of(part, p)
            inline = tr.data_url(url, p)
            source = (
                {"type": "base64", "media_type": inline[0], "data": inline[1]}
                if inline
                else {"type": "url", "url": url}
            )
            blocks.append({"type": "image", "source": source})
        else:
            raise tr.unsupported(TYPE, p, f"Content part type {kind!r}")
    return blocks


def _messages(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """System text apart; user/assistant turns with tool calls and results as blocks, same roles merged."""
    system: list[str] = []
    turns = tr.Turns("content")
    push = turns.push
    for i, m in enumerate(messages):
        role, param = m.get("role"), f"messages[{i}]"
        if role in ("system", "developer"):
            system.append(tr.text_of(m.get("content"), f"{param}.content"))
        elif role == "user":
            push("user", _content(m.get("content"), f"{param}.content"))
        elif role == "assistant":
            blocks = _content(m.get("content"), f"{param}.content")
            for j, call in enumerate(m.get("tool_calls") or []):
                name = tr.call_name(call, f"{param}.tool_calls[{j}]", need_id=True)
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call["id"],
                        "name": name,
                        "input": tr.arguments_of(call, f"{param}.tool_calls[{j}]"),
                    }
                )
            push("assistant", blocks)
        elif role == "tool":
            if not isinstance(m.get("tool_call_id"), str):
                raise tr.invalid(f"{param}.tool_call_id", "A tool message needs its tool_call_id.")
            push(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": m["tool_call_id"],
                        "content": tr.text_of(m.get("content"), f"{param}.content"),
                    }
                ],
            )
        else:
            raise tr.unsupported(TYPE, f"{param}.role", f"Message role {role!r}")
    return "\n\n".join(s for s in system if s), turns.out


class _Stream(StreamTranslator):
    """message_start, content_block_start/delta/stop (text, tool_use with partial JSON), message_delta,
    message_stop, ping, error."""

    def __init__(self, model: str) -> None:
        self.chunks = tr.Chunks(model)
        self.tools: dict[int, int] = {}  # content block index -> tool_calls index
        self.prompt = 0
        self.output = 0

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = tr.need(event, "type", str)
        if kind == "message_start":
            message = tr.obj(event.get("message"), "'message'")
            self.chunks.id = tr.opt(message, "id", str, "") or self.chunks.id
            use = tr.opt(message, "usage", dict, {})
            self.prompt = _usage(use)["prompt_tokens"]
            self.output = tr.opt(use, "output_tokens", int, 0)
            return [self.chunks.delta({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block(tr.need(event, "index", int), tr.obj(event.get("content_block"), "'content_block'"))
        if kind == "content_block_delta":
            return self._delta(tr.need(event, "index", int), tr.obj(event.get("delta"), "'delta'"))
        if kind == "message_delta":
            use = tr.opt(event, "usage", dict, {})
            if isinstance(use.get("output_tokens"), int):
                self.output = use["output_tokens"]
            if isinstance(use.get("input_tokens"), int):
                self.prompt = _usage(use)["prompt_tokens"]
            reason = tr.opt(event, "delta", dict, {}).get("stop_reason")
            return [self.chunks.delta({}, tr.finish(FINISH, reason))] if reason else []
        if kind == "message_stop":
            self.done = True
            return [self.chunks.usage(tr.usage(self.prompt, self.output))]
        if kind == "error":
            err = event.get("error")
            if isinstance(err, dict) and err.get("type") == "rate_limit_error":
                raise UpstreamRateLimited("rate limited (in stream)")
            raise stream_error((err.get("message") or err) if isinstance(err, dict) else err)
        return []  # ping, content_block_stop, and event types added later

    def _block(self, index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
        if block.get("type") == "tool_use":
            call_index = self.tools[index] = len(self.tools)
            call = tr.tool_call(call_index, tr.need(block, "id", str), tr.need(block, "name", str), "")
            return [self.chunks.delta({"tool_calls": [call]})]
        if block.get("type") == "text" and tr.opt(block, "text", str, ""):
            return [self.chunks.delta({"content": block["text"]})]
        return []

    def _delta(self, index: int, delta: dict[str, Any]) -> list[dict[str, Any]]:
        if delta.get("type") == "text_delta":
            return [self.chunks.delta({"content": tr.need(delta, "text", str)})]
        if delta.get("type") == "input_json_delta":
            if index not in self.tools:
                raise tr.malformed("tool input for a content block that did not start as a tool call")
            return [
                self.chunks.delta(
                    {
                        "tool_calls": [
                            {
                                "index": self.tools[index],
                                "function": {"arguments": tr.opt(delta, "partial_json", str, "")},
                            }
                        ]
                    }
                )
            ]
        return []  # thinking and signature deltas have no OpenAI equivalent
