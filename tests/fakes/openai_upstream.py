"""A fake OpenAI-compatible upstream: a real aiohttp server on 127.0.0.1 that can be scripted.

Each request takes the next queued :class:`Script` (or the default: a normal answer), so a test says
"the next two requests get a 500, then answer normally" with ``fake.queue(Script(status=500), ...)``.
Every request received is recorded, headers and parsed body included.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}


@dataclass
class Script:
    status: int = 200
    body: Any = None  # a dict/list to send as JSON, bytes to send raw; None: the normal answer
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the response headers
    hang: bool = False  # never answer
    chunks: int = 3  # content chunks in a stream
    chunk_delay: float = 0.0  # between stream chunks
    cut_after: int | None = None  # close the connection after this many stream events
    stall_after: int | None = None  # stop sending (without closing) after this many stream events
    no_done: bool = False  # end the stream without [DONE]
    role_in_first: bool = True
    bad_chunk_after: int | None = None  # send a non-JSON event after this many events
    raw_stream: list[bytes] | None = None  # send exactly these pieces as the stream body
    body_then: str | None = None  # non-stream: send the headers and half the body, then "stall" or "cut"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class FakeOpenAI:
    def __init__(self, name: str = "fake", models: tuple[str, ...] = ("gpt-4o-mini", "text-embedding-3-small")):
        self.name = name
        self.models = models
        self.received: list[Received] = []
        self.scripts: deque[Script] = deque()
        self.default = Script()
        self.open_streams = 0
        self.finished_streams = 0
        self.cancelled = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    def queue(self, *scripts: Script) -> None:
        self.scripts.extend(scripts)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings"):
            app.router.add_post(path, self._answer)
        app.router.add_post("/v1/responses", self._responses)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _models(self, request: web.Request) -> web.Response:
        self.received.append(Received(request.path, dict(request.headers), None))
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": self.name} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.received.append(Received(request.path, dict(request.headers), body))
        script = self.scripts.popleft() if self.scripts else self.default
        try:
            if script.hang:
                await asyncio.sleep(3600)
            if script.delay:
                await asyncio.sleep(script.delay)
            if script.status != 200 or script.body is not None:
                return _raw(script)
            if body.get("stream"):
                return await self._stream(request, body, script)
            if script.body_then:
                return await self._partial(request, json.dumps(self._complete(request.path, body)).encode(), script)
            return web.json_response(self._complete(request.path, body), headers=script.headers)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def _partial(self, request: web.Request, payload: bytes, script: Script) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = len(payload)
        await resp.prepare(request)
        await resp.write(payload[: len(payload) // 2])
        if script.body_then == "cut":
            request.transport.close()  # type: ignore[union-attr]
        else:
            await asyncio.sleep(3600)
        return resp

    def _complete(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        base = {"id": "cmpl-1", "created": int(time.time()), "model": body["model"], "usage": USAGE}
        if path.endswith("/embeddings"):
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, float(i)]} for i in range(len(inputs))]
            return {"object": "list", "data": data, "model": body["model"], "usage": USAGE}
        if path.endswith("/chat/completions"):
            message = {"role": "assistant", "content": f"Hello from {self.name}"}
            return {
                **base,
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }
        return {
            **base,
            "object": "text_completion",
            "choices": [{"index": 0, "text": f"Hello from {self.name}", "finish_reason": "stop", "logprobs": None}],
        }

    def _events(self, path: str, body: dict[str, Any], script: Script) -> list[dict[str, Any]]:
        chat = path.endswith("/chat/completions")
        base = {
            "id": "chunk-1",
            "created": int(time.time()),
            "model": body["model"],
            "object": "chat.completion.chunk" if chat else "text_completion",
        }
        words = [f"w{i} " for i in range(script.chunks)]
        events = []
        for i, word in enumerate(words):
            if chat:
                delta = {"content": word}
                if i == 0 and script.role_in_first:
                    delta = {"role": "assistant", "content": word}
                events.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
            else:
                events.append({**base, "choices": [{"index": 0, "text": word, "finish_reason": None}]})
        end = (
            {"index": 0, "delta": {}, "finish_reason": "stop"}
            if chat
            else {"index": 0, "text": "", "finish_reason": "stop"}
        )
        events.append({**base, "choices": [end]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": USAGE})
        return events

    async def _stream(self, request: web.Request, body: dict[str, Any], script: Script) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", **script.headers})
        await resp.prepare(request)
        self.open_streams += 1
        try:
            for piece in script.raw_stream or ():
                await resp.write(piece)
                await asyncio.sleep(0.01)  # separate TCP reads on the other side
            if script.raw_stream is not None:
                return resp
            for n, event in enumerate(self._events(request.path, body, script)):
                if n == script.cut_after:
                    request.transport.close()  # type: ignore[union-attr]
                    return resp
                if n == script.stall_after:
                    await asyncio.sleep(3600)
                if n == script.bad_chunk_after:
                    await resp.write(b"data: {not json\n\n")
                await resp.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                if script.chunk_delay:
                    await asyncio.sleep(script.chunk_delay)
            if not script.no_done:
                await resp.write(b"data: [DONE]\n\n")
            self.finished_streams += 1
            return resp
        finally:
            self.open_streams -= 1

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        """OpenAI's Responses API as OpenAI serves it: a response object, or its typed events (no
        ``[DONE]``); ``cut_after`` closes the stream after that many events, ``raw_stream`` replaces them."""
        body = await request.json()
        self.received.append(Received(request.path, dict(request.headers), body))
        script = self.scripts.popleft() if self.scripts else self.default
        if script.status != 200 or script.body is not None:
            return _raw(script)
        text = f"Hello from {self.name}"
        part = {"type": "output_text", "text": text, "annotations": []}
        message = {"id": "msg_up", "type": "message", "role": "assistant", "status": "completed", "content": [part]}
        done = {
            "id": "resp_upstream",
            "object": "response",
            "created_at": 1,
            "status": "completed",
            "model": body["model"],
            "output": [message],
            "usage": {"input_tokens": 7, "output_tokens": 5, "total_tokens": 12},
        }
        if not body.get("stream"):
            return web.json_response(done)
        started = {**done, "status": "in_progress", "output": [], "usage": None}
        where = {"item_id": "msg_up", "output_index": 0, "content_index": 0}
        events = [
            {"type": "response.created", "response": started},
            {"type": "response.output_item.added", "output_index": 0, "item": {**message, "content": []}},
            {"type": "response.content_part.added", **where, "part": {**part, "text": ""}},
            *({"type": "response.output_text.delta", **where, "delta": w} for w in (text[:5], text[5:])),
            {"type": "response.output_text.done", **where, "text": text},
            {"type": "response.content_part.done", **where, "part": part},
            {"type": "response.output_item.done", "output_index": 0, "item": message},
            {"type": "response.completed", "response": done},
        ]
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for piece in script.raw_stream or ():
            await resp.write(piece)
        for n, event in enumerate(events if script.raw_stream is None else ()):
            if n == script.cut_after:
                request.transport.close()  # type: ignore[union-attr]
                return resp
            data = json.dumps({**event, "sequence_number": n})
            await resp.write(f"event: {event['type']}\ndata: {data}\n\n".encode())
        return resp


def _raw(script: Script) -> web.Response:
    if isinstance(script.body, bytes):
        return web.Response(
            body=script.body, status=script.status, headers=script.headers, content_type="application/json"
        )
    body = script.body
    if body is None:
        body = {
            "error": {
                "message": f"scripted failure {script.status}",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
    return web.json_response(body, status=script.status, headers=script.headers)
