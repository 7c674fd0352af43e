"""A fake MCP server over stdio, written with the SDK's own server API: ``python -m tests.fakes.mcp_stdio_server``.

Tools: ``echo`` (its text back, and the process id that served it), ``crash`` (the process exits at
once, as a server that dies mid-call), ``sleep`` (waits ``seconds``; when the client cancels it, it
writes ``cancelled`` to ``$FAKE_MCP_MARKER``, so a test sees the cancellation arrive upstream),
``progress`` (reports ``steps`` progress notifications, then answers), ``announce`` (sends
``notifications/tools/list_changed``, as a server whose tools changed). A prompt ``greet`` and a
resource ``note://stdio/readme``.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("fake-stdio", log_level="WARNING")


@server.tool()
def echo(text: str) -> str:
    """Answer the text back, with the id of the process that served it."""
    return f"{text} (pid {os.getpid()})"


@server.tool()
def crash() -> str:
    """Exit the process at once, without answering."""
    os._exit(3)


@server.tool()
async def sleep(seconds: float) -> str:
    """Wait; record a cancellation in $FAKE_MCP_MARKER."""
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        marker = os.environ.get("FAKE_MCP_MARKER")
        if marker:
            Path(marker).write_text("cancelled")
        raise
    return "slept"


@server.tool()
async def progress(steps: int, ctx: Context) -> str:
    """Report ``steps`` progress notifications, then answer."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
    return "done"


@server.tool()
async def announce(ctx: Context) -> str:
    """Announce that the tool list changed."""
    await ctx.session.send_tool_list_changed()
    return "announced"


@server.prompt()
def greet(name: str) -> str:
    """A greeting."""
    return f"Hello, {name}!"


@server.resource("note://stdio/readme")
def readme() -> str:
    """The stdio server's readme."""
    return "read me from stdio"


if __name__ == "__main__":
    anyio.run(server.run_stdio_async)
