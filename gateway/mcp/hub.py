"""The upstream MCP servers of one runtime, as one: merged lists, calls routed by name or by URI.

Tools and prompts are listed as ``{server}__{name}`` and routed back by that prefix (a tool that runs only
as an MCP task is left out: the gateway relays no tasks). Resources keep their URIs: each is routed to the
server that listed it (or whose resource template matches it).
Lists ask every server at once and follow each one's pages; a server that is down, or slower than
its ``timeouts.call``, is left out of the answer (logged, and its reason kept for :meth:`Hub.health`),
never failing the whole list. Once a server has failed a list it is left out of every list at once,
without being waited for: one list at a time is sent to it in the background (no sooner than a backoff
that grows while it keeps failing, as its restarts do), and the lists take it in again once one of those
is answered. A runtime owns one hub; a reload builds a new one, and the old one
closes with its runtime, once the requests pinned to that runtime have finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import mcp.types as types
from mcp import InvalidUriTemplate, UriTemplate

from gateway.config import McpServerConfig
from gateway.mcp.access import qualified, split
from gateway.mcp.upstream import (
    BACKOFF_FIRST,
    BACKOFF_MAX,
    Changed,
    McpUpstreamError,
    Progress,
    Upstream,
    UpstreamHealth,
)

log = logging.getLogger("localrouter.mcp")

#: ``(server, name) -> visible``: a strategy's :meth:`McpAccess.allows`; None: everything
Allows = Callable[[str, str], bool]
#: upstream pages followed at most per list, against a server that never stops handing out cursors
MAX_PAGES = 1000

T = TypeVar("T")


@dataclass
class _Benched:
    """A server left out of lists since one failed, until a list sent in the background is answered."""

    failures: int = 0
    retry_at: float = 0.0  # loop time from which the next background list may go
    task: asyncio.Task[Any] | None = None


class Hub:
    """Built from ``mcp_servers`` without starting anything: a server starts when first used. ``changed``:
    called with ``(server, method)`` when a server announces that one of its lists changed."""

    def __init__(self, servers: Sequence[McpServerConfig], changed: Changed | None = None) -> None:
        self.upstreams: dict[str, Upstream] = {s.name: Upstream(s, changed) for s in servers}
        self._resources: dict[str, str] = {}  # URI -> the server that listed it
        self._templates: list[tuple[UriTemplate, str]] = []  # (template, server), in config order
        self._benched: dict[str, _Benched] = {}  # by server name
        self._named: dict[str, dict[str, frozenset[str]]] = {}  # "tools"/"prompts" -> server -> names it listed

    async def list_tools(self, allows: Allows | None = None) -> list[types.Tool]:
        listed = await self._list(types.ListToolsRequest, types.ListToolsResult, "tools")
        self._remember("tools", listed)
        return [_renamed(item, server) for server, item in _visible(listed, allows, _name) if not _task_only(item)]

    async def list_prompts(self, allows: Allows | None = None) -> list[types.Prompt]:
        listed = await self._list(types.ListPromptsRequest, types.ListPromptsResult, "prompts")
        self._remember("prompts", listed)
        return [_renamed(item, server) for server, item in _visible(listed, allows, _name)]

    async def list_resources(self, allows: Allows | None = None) -> list[types.Resource]:
        listed = await self._list(types.ListResourcesRequest, types.ListResourcesResult, "resources")
        routes = {uri: server for uri, server in self._resources.items() if listed.get(server) is None}
        for server, items in listed.items():
            for item in items or ():
                routes.setdefault(str(item.uri), server)
        self._resources = routes
        return [item for _, item in _visible(listed, allows, lambda r: str(r.uri))]

    async def list_resource_templates(self, allows: Allows | None = None) -> list[types.ResourceTemplate]:
        listed = await self._list(
            types.ListResourceTemplatesRequest, types.ListResourceTemplatesResult, "resource_templates"
        )
        kept = [(t, server) for t, server in self._templates if listed.get(server) is None]
        self._templates = kept + [(t, s) for s, items in listed.items() for t in _parsed(s, items or ())]
        return [item for _, item in _visible(listed, allows, lambda t: t.uri_template)]

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        progress: Progress | None = None,
        allows: Allows | None = None,
    ) -> types.CallToolResult:
        """Call ``{server}__{tool}``. A tool's own failure is a result with ``isError``; anything else
        raises :class:`McpUpstreamError`. ``progress`` gets the upstream's progress notifications;
        cancelling the calling task cancels the call upstream."""
        upstream, tool = self._route(name, "tool", allows)
        request = types.CallToolRequest(params=types.CallToolRequestParams(name=tool, arguments=arguments))
        return await upstream.request(request, types.CallToolResult, progress=progress)

    async def get_prompt(
        self, name: str, arguments: dict[str, str] | None = None, *, allows: Allows | None = None
    ) -> types.GetPromptResult:
        upstream, prompt = self._route(name, "prompt", allows)
        request = types.GetPromptRequest(params=types.GetPromptRequestParams(name=prompt, arguments=arguments))
        return await upstream.request(request, types.GetPromptResult)

    async def read_resource(
        self, uri: str, *, allows: Allows | None = None, located: bool = False
    ) -> types.ReadResourceResult:
        """Read ``uri`` from the server that listed it. Unknown, and outside ``allows``, are the same
        error: a client does not learn which URIs exist beyond its strategy. ``located``: the caller has
        just asked :meth:`locate`, so a URI still unknown is not listed for a second time."""
        server = self._resource_server(uri) if located else await self.locate(uri)
        if server is None or (allows is not None and not allows(server, uri)):
            raise McpUpstreamError(types.INVALID_PARAMS, f"unknown resource: {uri}", kind="unknown")
        request = types.ReadResourceRequest(params=types.ReadResourceRequestParams(uri=uri))
        return await self.upstreams[server].request(request, types.ReadResourceResult)

    async def locate(self, uri: str) -> str | None:
        """The server a resource's URI is routed to; when the lists seen so far do not say (none since this
        hub began: a start, a reload, a client's cached URI), after listing resources and templates again."""
        server = self._resource_server(uri)
        if server is None:
            await asyncio.gather(self.list_resources(), self.list_resource_templates())
            server = self._resource_server(uri)
        return server

    def listed(self, server: str, name: str) -> bool:
        """Whether ``name`` was a tool or prompt in ``server``'s latest list this hub has seen: a name a
        client made up never is."""
        return any(name in by_server.get(server, ()) for by_server in self._named.values())

    def health(self) -> list[UpstreamHealth]:
        return [u.health() for u in self.upstreams.values()]

    async def close(self) -> None:
        """Stop every server; calls still running get an error."""
        for benched in self._benched.values():
            if benched.task is not None:
                benched.task.cancel()
        await asyncio.gather(*(u.close() for u in self.upstreams.values()))

    def _remember(self, field: str, listed: dict[str, list[Any] | None]) -> None:
        names = self._named.setdefault(field, {})
        for server, items in listed.items():
            if items is not None:  # a server left out keeps the names of its last list
                names[server] = frozenset(str(item.name) for item in items)

    def _route(self, name: str, kind: str, allows: Allows | None) -> tuple[Upstream, str]:
        parts = split(name)
        if parts is not None and allows is not None and not allows(*parts):
            message = f"{kind} {name!r} is not allowed by this client's strategy"
            raise McpUpstreamError(types.INVALID_PARAMS, message, kind="refused")
        if parts is None or parts[0] not in self.upstreams:
            raise McpUpstreamError(types.INVALID_PARAMS, f"unknown {kind}: {name}", kind="unknown")
        return self.upstreams[parts[0]], parts[1]

    def _resource_server(self, uri: str) -> str | None:
        server = self._resources.get(uri)
        if server is not None:
            return server
        return next((s for template, s in self._templates if template.match(uri) is not None), None)

    async def _list(self, request: Any, result: Any, field: str) -> dict[str, list[Any] | None]:
        """Each server's items (all its pages), or None for a server left out."""
        pages = [self._pages(u, request, result, field) for u in self.upstreams.values()]
        return dict(zip(self.upstreams, await asyncio.gather(*pages), strict=True))

    async def _pages(self, upstream: Upstream, request: Any, result: Any, field: str) -> list[Any] | None:
        benched = self._benched.get(upstream.name)
        if benched is None:
            return await self._fetch(upstream, request, result, field)
        loop = asyncio.get_running_loop()
        if benched.task is None and loop.time() >= benched.retry_at:
            benched.task = loop.create_task(self._fetch(upstream, request, result, field))
            benched.task.add_done_callback(lambda _: setattr(benched, "task", None))
        return None

    async def _fetch(self, upstream: Upstream, request: Any, result: Any, field: str) -> list[Any] | None:
        """All of a server's pages, or None when it failed (then benched: left out of the next lists)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + upstream.config.timeouts.call
        items: list[Any] = []
        cursor: str | None = None
        try:
            for _ in range(MAX_PAGES):
                params = types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
                timeout = max(deadline - loop.time(), 0.001)
                page = await upstream.request(request(params=params), result, timeout=timeout)
                items.extend(getattr(page, field))
                if page.next_cursor is None:
                    self._benched.pop(upstream.name, None)
                    return items
                cursor = page.next_cursor
            log.warning("mcp server %s: more than %d pages of %s; the rest left out", upstream.name, MAX_PAGES, field)
            self._benched.pop(upstream.name, None)
            return items
        except McpUpstreamError as exc:
            log.warning("mcp server %s: left out of the %s list: %s", upstream.name, field, exc.message)
            upstream.note(exc)
            benched = self._benched.setdefault(upstream.name, _Benched())
            benched.failures += 1
            benched.retry_at = loop.time() + min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (benched.failures - 1))
            return None


def _name(item: Any) -> str:
    return str(item.name)


def _task_only(tool: types.Tool) -> bool:
    """A tool that runs only as an MCP task (``taskSupport: required``): the gateway relays no tasks (it does
    not offer the ``tasks`` capability), so a client could never call it through the gateway."""
    return tool.execution is not None and tool.execution.task_support == "required"


def _renamed(item: T, server: str) -> T:
    return item.model_copy(update={"name": qualified(server, item.name)})  # type: ignore[attr-defined]


def _visible(listed: dict[str, list[T] | None], allows: Allows | None, key: Callable[[T], str]) -> list[tuple[str, T]]:
    return [
        (server, item)
        for server, items in listed.items()
        for item in items or ()
        if allows is None or allows(server, key(item))
    ]


def _parsed(server: str, templates: Sequence[types.ResourceTemplate]) -> list[UriTemplate]:
    out = []
    for t in templates:
        try:
            out.append(UriTemplate.parse(t.uri_template))
        except InvalidUriTemplate:
            log.warning("mcp server %s: resource template %r is not a URI template; not routed", server, t.uri_template)
    return out
