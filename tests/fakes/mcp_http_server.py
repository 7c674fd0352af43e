"""A fake MCP server over Streamable HTTP, written with the SDK's low-level server API.

``python -m tests.fakes.mcp_http_server PORT_FILE [--port N] [--list-delay SECONDS]``: serves ``/mcp``
on 127.0.0.1 at port N (default: one the system picks), written to PORT_FILE once it listens. Its lists come in pages
of two (``nextCursor``), so a client that stops at the first page misses items. ``--list-delay``
makes every list that slow, as an overloaded server.

``POST /forget`` makes it forget every session it has had so far (their requests get 404 from then on),
as a server that restarted behind a proxy would, without dropping a connection.

Tools: ``shout`` (its text in capitals), ``whoami`` (the ``Authorization`` header it was called
with), ``t1``..``t3``. A prompt ``summary``; resources ``note://http/1``..``note://http/3`` and a
template ``note://http/{id}``.
"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

PAGE = 2
TOOLS = [
    types.Tool(name="shout", description="Capitals", input_schema={"type": "object", "properties": {"text": {}}}),
    types.Tool(name="whoami", description="The Authorization header", input_schema={"type": "object"}),
    *(types.Tool(name=f"t{i}", input_schema={"type": "object"}) for i in (1, 2, 3)),
]
RESOURCES = [types.Resource(name=f"note {i}", uri=f"note://http/{i}", mime_type="text/plain") for i in (1, 2, 3)]
PROMPTS = [types.Prompt(name="summary", description="Summarize", arguments=[types.PromptArgument(name="topic")])]


def page(items: list[Any], params: types.PaginatedRequestParams | None) -> tuple[list[Any], str | None]:
    start = int(params.cursor) if params and params.cursor else 0
    end = start + PAGE
    return items[start:end], str(end) if end < len(items) else None


def build(list_delay: float) -> Server:
    async def list_tools(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        await anyio.sleep(list_delay)
        tools, cursor = page(TOOLS, params)
        return types.ListToolsResult(tools=tools, next_cursor=cursor)

    async def call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> types.CallToolResult:
        args = params.arguments or {}
        if params.name == "shout":
            text = str(args.get("text", "")).upper()
        elif params.name == "whoami":
            text = ctx.request.headers.get("authorization", "") if ctx.request is not None else ""
        else:
            text = params.name
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

    async def list_resources(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        await anyio.sleep(list_delay)
        resources, cursor = page(RESOURCES, params)
        return types.ListResourcesResult(resources=resources, next_cursor=cursor)

    async def list_templates(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        await anyio.sleep(list_delay)
        template = types.ResourceTemplate(name="note", uri_template="note://http/{id}")
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def read_resource(
        ctx: ServerRequestContext, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        text = f"contents of {params.uri}"
        return types.ReadResourceResult(contents=[types.TextResourceContents(uri=params.uri, text=text)])

    async def list_prompts(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        await anyio.sleep(list_delay)
        return types.ListPromptsResult(prompts=PROMPTS)

    async def get_prompt(ctx: ServerRequestContext, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        topic = (params.arguments or {}).get("topic", "")
        message = types.PromptMessage(role="user", content=types.TextContent(type="text", text=f"Summarize {topic}"))
        return types.GetPromptResult(messages=[message])

    return Server(
        "fake-http",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
    )


class Forgetful:
    """ASGI middleware: after ``POST /forget``, a 404 for every session id seen before it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: set[bytes] = set()
        self.forgotten: set[bytes] = set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] == "/forget":
            self.forgotten |= self.seen
            return await self._answer(send, 204)
        session = dict(scope["headers"]).get(b"mcp-session-id")
        if session in self.forgotten:
            return await self._answer(send, 404)
        if session is not None:
            self.seen.add(session)
        await self.app(scope, receive, send)

    async def _answer(self, send: Any, status: int) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port_file")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--list-delay", type=float, default=0.0)
    args = parser.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # --port: the port a stopped fake had
    sock.bind(("127.0.0.1", args.port))
    app = Forgetful(build(args.list_delay).streamable_http_app())
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1))
    Path(args.port_file).write_text(str(sock.getsockname()[1]))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
