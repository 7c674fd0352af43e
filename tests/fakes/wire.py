"""One scripted model behind every wire format: OpenAI (and Azure's deployment URLs), Anthropic's
Messages, Gemini's generateContent, Ollama's native API. Real aiohttp servers on 127.0.0.1.

The model's behaviour is the same in every format, so one contract suite can check each adapter:
- tools offered and no tool result yet: it calls ``get_weather`` with ``{"city": "Paris"}``;
- a tool result in the history: "The weather in Paris is <result>";
- otherwise: "Hello from <name>", plus " [system: <text>]" when a system prompt arrived and
  " (turn N)" with the number of user turns;
- a token limit of 1: "Hel", finish "length".
Usage is always 7 prompt + 5 completion tokens (Anthropic's plus ``extra_usage``). ``fail(status)``
queues an error answer in the format's own error shape; ``fail_stream(after, message)`` makes the next
stream send its format's error event, holding ``message``, after ``after`` events (``message`` None: the
stream just ends there). Every request is recorded, normalised (``seen``) and raw (``raw``).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from anthropic._constants import ANTHROPIC_API_VERSION

PROMPT, COMPLETION = 7, 5
KEY = "sk-upstream-primary-key"
#: the ``anthropic-version`` values the Anthropic fake takes: the adapter's own, and the one the installed
#: ``anthropic`` SDK sends (which the gateway passes on for a client that speaks Messages)
ANTHROPIC_VERSIONS = frozenset({"2023-06-01", ANTHROPIC_API_VERSION})


@dataclass
class Seen:
    """A request as the model understood it, whatever the format."""

    system: str = ""
    user_turns: int = 0
    tool_result: str | None = None
    tools: list[str] = field(default_factory=list)
    max_tokens: int | None = None
    stream: bool = False

    def note(self, messages: list[dict[str, Any]], system_roles: tuple[str, ...]) -> Seen:
        """Take in OpenAI-shaped messages (Ollama's are too); ``self``, for chaining."""
        for m in messages:
            if m["role"] in system_roles:
                self.system += m["content"]
            elif m["role"] == "user":
                self.user_turns += 1
            elif m["role"] == "tool":
                self.tool_result = m["content"]
        return self


def decide(name: str, seen: Seen) -> tuple[str, dict[str, Any] | None, str]:
    """(text, tool call or None, finish: stop|length|tool_calls)."""
    if seen.max_tokens == 1:
        return "Hel", None, "length"
    if seen.tool_result is not None:
        return f"The weather in Paris is {seen.tool_result}", None, "stop"
    if "get_weather" in seen.tools:
        return "", {"name": "get_weather", "args": {"city": "Paris"}}, "tool_calls"
    text = f"Hello from {name}"
    if seen.system:
        text += f" [system: {seen.system}]"
    return text + f" (turn {seen.user_turns})", None, "stop"


def pieces(text: str) -> list[str]:
    return [text[i : i + 4] for i in range(0, len(text), 4)] or [""]


class WireFake:
    def __init__(self, kind: str, name: str = "up") -> None:
        self.kind, self.name = kind, name
        self.seen: list[Seen] = []
        self.raw: list[tuple[str, dict[str, str], Any]] = []
        self.failures: deque[int] = deque()
        self.stream_failures: deque[tuple[int, str | None]] = deque()
        #: counts added to Anthropic's usage (the prompt cache's, for one)
        self.extra_usage: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    def fail(self, *statuses: int) -> None:
        self.failures.extend(statuses)

    def fail_stream(self, after: int, message: str | None) -> None:
        self.stream_failures.append((after, message))

    def _broken(self, events: list[Any]) -> list[Any]:
        """``events`` cut by the next scripted stream failure (its error event in their place), if any."""
        if not self.stream_failures:
            return events
        after, message = self.stream_failures.popleft()
        if message is None:
            return events[:after]
        error: Any = {
            "anthropic": ("error", {"type": "error", "error": {"type": "api_error", "message": message}}),
            "gemini": (None, {"error": {"code": 500, "message": message, "status": "INTERNAL"}}),
            "ollama": {"error": message},
        }.get(self.kind, (None, {"error": {"message": message, "type": "server_error", "param": None, "code": None}}))
        return [*events[:after], error]

    @property
    def base_url(self) -> str:
        root = f"http://127.0.0.1:{self.port}"
        return root + "/v1" if self.kind == "openai" else root

    async def start(self) -> WireFake:
        app = web.Application()
        routes = {
            "openai": [("POST", "/v1/chat/completions", self._openai), ("POST", "/v1/embeddings", self._embed)],
            "azure": [
                ("POST", "/openai/deployments/{dep}/chat/completions", self._openai),
                ("POST", "/openai/deployments/{dep}/embeddings", self._embed),
            ],
            "anthropic": [
                ("POST", "/v1/messages", self._anthropic),
                ("POST", "/v1/messages/count_tokens", self._count_tokens),
            ],
            "gemini": [("POST", "/v1beta/models/{call}", self._gemini)],
            "ollama": [
                ("POST", "/api/chat", self._ollama),
                ("POST", "/api/embed", self._embed),
                ("GET", "/api/tags", self._tags),
            ],
        }[self.kind]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- plumbing ---------------------------------------------------------------------------

    async def _receive(self, request: web.Request) -> Any:
        body = await request.json()
        self.raw.append((request.path_qs, dict(request.headers), body))
        return body

    def _error(self, status: int) -> web.Response:
        message = f"scripted {status}"
        body = {
            "anthropic": {
                "type": "error",
                "error": {"type": "api_error" if status >= 500 else "invalid_request_error", "message": message},
            },
            "gemini": {"error": {"code": status, "message": message, "status": "INVALID_ARGUMENT"}},
            "ollama": {"error": message},
        }.get(self.kind, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})
        return web.json_response(body, status=status)

    async def _sse(self, request: web.Request, events: list[tuple[str | None, Any]]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            for name, data in self._broken(events):
                head = f"event: {name}\n" if name else ""
                payload = data if isinstance(data, str) else json.dumps(data)
                await resp.write(f"{head}data: {payload}\n\n".encode())
                await asyncio.sleep(0.005)  # separate reads on the other side
            await resp.write_eof()
        except ConnectionError:  # the gateway left first (it stops reading at an error event)
            pass
        return resp

    def _check_key(self, request: web.Request, header: str, expected: str) -> web.Response | None:
        if request.headers.get(header) != expected:
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        return None

    # --- OpenAI and Azure -------------------------------------------------------------------

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        if self.kind == "azure":
            bad = self._check_key(request, "api-key", KEY)
            if bad or "api-version" not in request.query:
                return bad or web.json_response({"error": {"message": "no api-version"}}, status=404)
        else:
            bad = self._check_key(request, "Authorization", f"Bearer {KEY}")
            if bad:
                return bad
        body = await self._receive(request)
        if self.failures:
            return self._error(self.failures.popleft())
        seen = Seen(
            stream=bool(body.get("stream")),
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
            tools=[t["function"]["name"] for t in body.get("tools") or []],
        )
        self.seen.append(seen.note(body["messages"], system_roles=("system", "developer")))
        text, call, finish = decide(self.name, seen)
        model = body.get("model", "m")
        if not seen.stream:
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if call:
                message["tool_calls"] = [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
                    }
                ]
            return web.json_response(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 1,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": {
                        "prompt_tokens": PROMPT,
                        "completion_tokens": COMPLETION,
                        "total_tokens": PROMPT + COMPLETION,
                    },
                }
            )
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model}

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> tuple[None, Any]:
            return None, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

        events = [chunk({"role": "assistant", "content": ""})]
        if call:
            args = json.dumps(call["args"])
            events.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": call["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            events += [
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[i : i + 5]}}]})
                for i in range(0, len(args), 5)
            ]
        else:
            events += [chunk({"content": p}) for p in pieces(text)]
        events.append(chunk({}, finish))
        events.append(
            (
                None,
                {
                    **base,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": PROMPT,
                        "completion_tokens": COMPLETION,
                        "total_tokens": PROMPT + COMPLETION,
                    },
                },
            )
        )
        events.append((None, "[DONE]"))
        return await self._sse(request, events)

    async def _embed(self, request: web.Request) -> web.Response:
        body = await self._receive(request)
        if self.failures:
            return self._error(self.failures.popleft())
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = [[0.5, float(len(text))] for text in inputs]
        if self.kind == "ollama":
            return web.json_response({"model": body["model"], "embeddings": vectors, "prompt_eval_count": PROMPT})
        return web.json_response(
            {
                "object": "list",
                "model": body.get("model", "m"),
                "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": PROMPT, "total_tokens": PROMPT},
            }
        )

    # --- Anthropic --------------------------------------------------------------------------

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        bad = self._check_key(request, "x-api-key", KEY)
        if bad or request.headers.get("anthropic-version") not in ANTHROPIC_VERSIONS:
            return bad or web.json_response({"type": "error", "error": {"message": "version"}}, status=400)
        body = await self._receive(request)
        if self.failures:
            return self._error(self.failures.popleft())
        if not isinstance(body.get("max_tokens"), int):
            return self._error(400)
        system = body.get("system", "")
        seen = Seen(
            stream=bool(body.get("stream")),
            max_tokens=body["max_tokens"],
            system=system if isinstance(system, str) else "".join(b["text"] for b in system),
            tools=[t["name"] for t in body.get("tools") or []],
        )
        for m in body["messages"]:
            blocks = m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]
            for block in blocks:
                if block["type"] == "tool_result":
                    seen.tool_result = block["content"]
            if m["role"] == "user" and any(b["type"] in ("text", "image") for b in blocks):
                seen.user_turns += 1
        self.seen.append(seen)
        text, call, finish = decide(self.name, seen)
        stop = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}[finish]
        usage = {"input_tokens": PROMPT, "output_tokens": COMPLETION, **self.extra_usage}
        if not seen.stream:
            content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
            if call:
                content.append({"type": "tool_use", "id": "toolu_1", "name": call["name"], "input": call["args"]})
            return web.json_response(
                {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": content,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": usage,
                }
            )
        events: list[tuple[str | None, Any]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_1",
                        "type": "message",
                        "role": "assistant",
                        "model": body["model"],
                        "content": [],
                        "stop_reason": None,
                        "usage": {"input_tokens": PROMPT, "output_tokens": 1, **self.extra_usage},
                    },
                },
            ),
            ("ping", {"type": "ping"}),
        ]
        if text:
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                )
            )
            events += [
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
                )
                for p in pieces(text)
            ]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        if call:
            index = 1 if text else 0
            args = json.dumps(call["args"])
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "tool_use", "id": "toolu_1", "name": call["name"], "input": {}},
                    },
                )
            )
            events += [
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": args[i : i + 5]},
                    },
                )
                for i in range(0, len(args), 5)
            ]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events += [
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": COMPLETION},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return await self._sse(request, events)

    async def _count_tokens(self, request: web.Request) -> web.Response:
        bad = self._check_key(request, "x-api-key", KEY)
        if bad:
            return bad
        await self._receive(request)
        if self.failures:
            return self._error(self.failures.popleft())
        return web.json_response({"input_tokens": PROMPT})

    # --- Gemini -----------------------------------------------------------------------------

    async def _gemini(self, request: web.Request) -> web.StreamResponse:
        bad = self._check_key(request, "x-goog-api-key", KEY)
        if bad:
            return bad
        body = await self._receive(request)
        if self.failures:
            return self._error(self.failures.popleft())
        model, _, method = request.match_info["call"].partition(":")
        if method in ("embedContent", "batchEmbedContents"):
            items = [body["content"]] if method == "embedContent" else [r["content"] for r in body["requests"]]
            vectors = [{"values": [0.5, float(len(c["parts"][0]["text"]))]} for c in items]
            return web.json_response({"embedding": vectors[0]} if method == "embedContent" else {"embeddings": vectors})
        config = body.get("generationConfig") or {}
        seen = Seen(
            stream=method == "streamGenerateContent",
            max_tokens=config.get("maxOutputTokens"),
            system="".join(p["text"] for p in (body.get("systemInstruction") or {}).get("parts", [])),
            tools=[d["name"] for t in body.get("tools") or [] for d in t.get("functionDeclarations", [])],
        )
        for c in body["contents"]:
            for part in c["parts"]:
                if "functionResponse" in part:
                    seen.tool_result = part["functionResponse"]["response"]["result"]
            if c["role"] == "user" and any("text" in p or "inlineData" in p for p in c["parts"]):
                seen.user_turns += 1
        self.seen.append(seen)
        text, call, finish = decide(self.name, seen)
        reason = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}[finish]
        usage = {"promptTokenCount": PROMPT, "candidatesTokenCount": COMPLETION, "totalTokenCount": PROMPT + COMPLETION}
        parts: list[dict[str, Any]] = [{"text": text}] if text else []
        if call:
            parts.append({"functionCall": {"name": call["name"], "args": call["args"]}})
        if not seen.stream:
            return web.json_response(
                {
                    "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": reason, "index": 0}],
                    "usageMetadata": usage,
                    "modelVersion": model,
                    "responseId": "resp-1",
                }
            )
        events: list[tuple[str | None, Any]] = []
        for p in pieces(text) if text else []:
            events.append(
                (
                    None,
                    {
                        "candidates": [{"content": {"role": "model", "parts": [{"text": p}]}, "index": 0}],
                        "usageMetadata": {"promptTokenCount": PROMPT},
                        "responseId": "resp-1",
                    },
                )
            )
        last_parts = [{"functionCall": {"name": call["name"], "args": call["args"]}}] if call else [{"text": ""}]
        events.append(
            (
                None,
                {
                    "candidates": [
                        {"content": {"role": "model", "parts": last_parts}, "finishReason": reason, "index": 0}
                    ],
                    "usageMetadata": usage,
                    "responseId": "resp-1",
                },
            )
        )
        return await self._sse(request, events)

    # --- Ollama -----------------------------------------------------------------------------

    async def _tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [{"name": "m:latest", "model": "m:latest"}]})

    async def _ollama(self, request: web.Request) -> web.StreamResponse:
        body = await self._receive(request)
        if self.failures:
            return self._error(self.failures.popleft())
        options = body.get("options") or {}
        seen = Seen(
            stream=body.get("stream", True),
            max_tokens=options.get("num_predict"),
            tools=[t["function"]["name"] for t in body.get("tools") or []],
        )
        self.seen.append(seen.note(body["messages"], system_roles=("system",)))
        text, call, finish = decide(self.name, seen)
        reason = "length" if finish == "length" else "stop"
        final = {
            "model": body["model"],
            "created_at": "2026-01-01T00:00:00Z",
            "done": True,
            "done_reason": reason,
            "prompt_eval_count": PROMPT,
            "eval_count": COMPLETION,
        }
        calls = [{"function": {"name": call["name"], "arguments": call["args"]}}] if call else []
        if not seen.stream:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if calls:
                message["tool_calls"] = calls
            return web.json_response({**final, "message": message})
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        lines = [
            {"model": body["model"], "message": {"role": "assistant", "content": p}, "done": False}
            for p in (pieces(text) if text else [])
        ]
        if calls:
            lines.append(
                {
                    "model": body["model"],
                    "message": {"role": "assistant", "content": "", "tool_calls": calls},
                    "done": False,
                }
            )
        lines.append({**final, "message": {"role": "assistant", "content": ""}})
        try:
            for line in self._broken(lines):
                await resp.write(json.dumps(line).encode() + b"\n")
                await asyncio.sleep(0.005)
            await resp.write_eof()
        except ConnectionError:  # the gateway left first (it stops reading at an error line)
            pass
        return resp
