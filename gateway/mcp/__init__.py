"""The MCP gateway: the configured MCP servers, as one, and the gateway as their clients' MCP server.

``hub`` (one per runtime: lists merged across servers, tools and prompts named ``{server}__{name}``,
calls routed back), ``upstream`` (one server: its session kept by a supervisor task, started on first
use, restarted with backoff; :class:`McpUpstreamError`, ready for a JSON-RPC error answer), ``access``
(a strategy's ``mcp`` globs: what it may see and call). Talks to the servers with the official ``mcp``
SDK's clients and validates their answers with its types; ``inbound`` answers the gateway's own MCP
clients (JSON-RPC over Streamable HTTP, gateway.api.mcp) and ``sessions`` keeps their sessions (shared
through Redis by ``redis_sessions``).

Nothing is re-exported here: importing the package must not load the SDK (it takes most of a
second), which only ``hub``, ``upstream`` and ``inbound`` do, and only a config with ``mcp_servers`` imports those.
"""
