"""The gateway as an MCP server: one client's JSON-RPC request, validated with the SDK's types and
answered from the hub within what the client's strategy allows. Knows nothing of HTTP: the endpoint
(gateway.api.mcp) frames requests and answers, keeps sessions and relays progress.

Lists are the hub's merged lists, paged here: a cursor is the offset into the merged list, which a
client treats as opaque. Every error is an :class:`McpUpstreamError`, ready for a JSON-RPC error answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args

import mcp.types as types
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import BaseModel, ValidationError

from gateway import __version__
from gateway.mcp.access import split
from gateway.mcp.hub import Allows, Hub
from gateway.mcp.upstream import McpUpstreamError, Progress

#: the revisions ``initialize`` agrees to: the current one and the one before it
VERSIONS: tuple[str, ...] = HANDSHAKE_PROTOCOL_VERSIONS[-2:]
#: items per page of a list
PAGE_SIZE = 100
#: the answer to a request the client cancelled (the code LSP gives it; MCP names none)
REQUEST_CANCELLED = -32800
#: the requests that reach one upstream item: each is logged, counted and recorded
CALLS = frozenset({"tools/call", "prompts/get", "resources/read"})

_ANSWERED = frozenset(
    {"initialize", "ping", "tools/list", "tools/call", "prompts/list", "prompts/get", "resources/list"}
    | {"resources/read", "resources/templates/list"}
)
#: the SDK's request type of each method answered: params are checked against the one their method names
#: (against the union of all, a mistake would be reported once per type it fails to be)
_REQUESTS: dict[str, type[BaseModel]] = {
    r.model_fields["method"].default: r
    for r in get_args(types.ClientRequest)
    if r.model_fields["method"].default in _ANSWERED
}


def negotiate(requested: str) -> str:
    """The revision to answer ``initialize`` with: the client's if supported, else the current one (the
    client then decides whether it can speak it)."""
    return requested if requested in VERSIONS else VERSIONS[-1]


@dataclass(frozen=True, slots=True)
class Target:
    """Which upstream item a call is for, as the logs name it. ``server``: None when no configured server
    has it."""

    server: str | None
    item: str


def parse(method: str, params: dict[str, Any] | None) -> Any:
    """The SDK's typed request for ``method``; METHOD_NOT_FOUND for one the gateway does not answer,
    INVALID_PARAMS for malformed params."""
    request_type = _REQUESTS.get(method)
    if request_type is None:
        raise McpUpstreamError(types.METHOD_NOT_FOUND, f"Method not found: {method}")
    raw: dict[str, Any] = {"method": method} if params is None else {"method": method, "params": params}
    try:
        return request_type.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or 'params'}: {e['msg']}" for e in exc.errors()[:3])
        raise McpUpstreamError(types.INVALID_PARAMS, f"Invalid params for {method}: {problems}") from exc


def progress_token(request: Any) -> str | int | None:
    meta = getattr(getattr(request, "params", None), "meta", None)
    return meta.get("progress_token") if isinstance(meta, dict) else getattr(meta, "progress_token", None)


def initialized(version: str) -> dict[str, Any]:
    """``initialize``'s result. ``listChanged``: the GET stream announces the upstreams' list changes, and a
    reload's."""
    capabilities = types.ServerCapabilities(
        tools=types.ToolsCapability(list_changed=True),
        prompts=types.PromptsCapability(list_changed=True),
        resources=types.ResourcesCapability(subscribe=False, list_changed=True),
    )
    result = types.InitializeResult(
        protocol_version=version,
        capabilities=capabilities,
        server_info=types.Implementation(name="localrouter", version=__version__),
    )
    return _dumped(result)


class Inbound:
    """One client's view of a hub: ``allows`` is its strategy's :meth:`McpAccess.allows`."""

    def __init__(self, hub: Hub, allows: Allows) -> None:
        self.hub, self.allows = hub, allows

    async def target(self, request: Any) -> Target:
        """Which item a call is for, and its server: a resource's is located (listed again when not known
        yet), so that the firewall judges ``{server}__{uri}`` from the first read on."""
        if isinstance(request, types.ReadResourceRequest):
            uri = str(request.params.uri)
            return Target(await self.hub.locate(uri), uri)
        name = request.params.name
        parts = split(name)
        return Target(parts[0] if parts and parts[0] in self.hub.upstreams else None, name)

    def listed(self, target: Target) -> bool:
        """Whether the target is a tool or prompt its server has listed: only such a name is a metric's label
        (a made-up one, answered by a server that answers any name, mints no series)."""
        parts = split(target.item)
        return target.server is not None and parts is not None and self.hub.listed(*parts)

    async def answer(self, request: Any, progress: Progress | None = None) -> dict[str, Any]:
        """The result of any request but ``initialize``, as JSON-ready data. A ``resources/read`` has been
        located already (:meth:`target`)."""
        hub, allows = self.hub, self.allows
        if isinstance(request, types.PingRequest):
            return {}
        if isinstance(request, types.CallToolRequest):
            p = request.params
            return _dumped(await hub.call_tool(p.name, p.arguments, progress=progress, allows=allows))
        if isinstance(request, types.GetPromptRequest):
            return _dumped(await hub.get_prompt(request.params.name, request.params.arguments, allows=allows))
        if isinstance(request, types.ReadResourceRequest):
            return _dumped(await hub.read_resource(str(request.params.uri), allows=allows, located=True))
        return await self._page(request)

    async def _page(self, request: Any) -> dict[str, Any]:
        cursor = request.params.cursor if request.params is not None else None
        start = _offset(cursor)
        items: Sequence[BaseModel]
        if isinstance(request, types.ListToolsRequest):
            field, items = "tools", await self.hub.list_tools(self.allows)
        elif isinstance(request, types.ListPromptsRequest):
            field, items = "prompts", await self.hub.list_prompts(self.allows)
        elif isinstance(request, types.ListResourcesRequest):
            field, items = "resources", await self.hub.list_resources(self.allows)
        else:
            field, items = "resourceTemplates", await self.hub.list_resource_templates(self.allows)
        end = start + PAGE_SIZE
        page: dict[str, Any] = {field: [_dumped(item) for item in items[start:end]]}
        if end < len(items):
            page["nextCursor"] = str(end)
        return page


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 9:  # int() reads other scripts' digits too
        raise McpUpstreamError(types.INVALID_PARAMS, "Invalid cursor: pass back a nextCursor as it was given")
    return int(cursor)


def _dumped(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


def progress_note(token: str | int, progress: float, total: float | None, message: str | None) -> dict[str, Any]:
    """A ``notifications/progress`` for the client, relaying one of the upstream's."""
    params = types.ProgressNotificationParams(progress_token=token, progress=progress, total=total, message=message)
    return {"jsonrpc": "2.0", "method": "notifications/progress", "params": _dumped(params)}


#: how a call ended, by the gateway's own refusals (:attr:`McpUpstreamError.kind`) and then by JSON-RPC code:
#: the status recorded for it (an HTTP status's meaning; the answer itself is a JSON-RPC error) and its word
_BY_KIND = {"refused": (403, "refused"), "unknown": (404, "not_found")}
_BY_CODE = {
    types.INVALID_PARAMS: (400, "invalid_params"),  # the upstream's verdict on the arguments
    types.REQUEST_TIMEOUT: (504, "timeout"),
    types.CONNECTION_CLOSED: (502, "unavailable"),  # down, not started, or died during the call
    REQUEST_CANCELLED: (499, "cancelled"),
}
UPSTREAM_ERROR = (502, "upstream_error")  # any other JSON-RPC error of the upstream, or an invalid answer


def call_status(outcome: dict[str, Any] | McpUpstreamError) -> tuple[int, str]:
    """``(status, word)`` for how a call ended; the words are few (metrics' labels): ok, tool_error (the
    tool's own ``isError``, answered with 200), refused, not_found, invalid_params, timeout, unavailable,
    cancelled, upstream_error."""
    if isinstance(outcome, dict):
        return (200, "tool_error") if outcome.get("isError") else (200, "ok")
    if outcome.kind is not None:
        return _BY_KIND[outcome.kind]
    return _BY_CODE.get(outcome.code, UPSTREAM_ERROR)


def reached(outcome: dict[str, Any] | McpUpstreamError) -> bool:
    """Whether the call went to an upstream server (not refused by the gateway first)."""
    return not isinstance(outcome, McpUpstreamError) or outcome.kind is None
