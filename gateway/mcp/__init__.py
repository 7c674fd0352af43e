"""The MCP gateway's upstream side: the configured MCP servers, as one.

``hub`` (one per runtime: lists merged across servers, tools and prompts named ``{server}__{name}``,
calls routed back), ``upstream`` (one server: its session kept by a supervisor task, started on first
use, restarted with backoff; :class:`McpUpstreamError`, ready for a JSON-RPC error answer), ``access``
(a strategy's ``mcp`` globs: what it may see and call). Talks to the servers with the official ``mcp``
SDK's clients and validates their answers with its types. The inbound MCP endpoint sits above this.
"""

from gateway.mcp.access import McpAccess, allowed, qualified, split
from gateway.mcp.hub import Allows, Hub
from gateway.mcp.upstream import McpUpstreamError, Progress, Upstream, UpstreamHealth

__all__ = [
    "Allows",
    "Hub",
    "McpAccess",
    "McpUpstreamError",
    "Progress",
    "Upstream",
    "UpstreamHealth",
    "allowed",
    "qualified",
    "split",
]
