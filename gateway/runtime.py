"""Everything built from one config, and the live one that requests start on.

A reload builds a whole new :class:`Runtime` beside the old one and swaps it in; a request keeps the
runtime it started with (auth stores it on the request), so requests in flight finish on their config.
Each runtime owns one connection pool per provider, and one hub of upstream MCP servers; a retired runtime
closes them once the last request that started on it has finished.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import aiohttp

from gateway import config as gwconfig
from gateway.auth.clients import ClientRegistry
from gateway.auth.overrides import make_overrides
from gateway.auth.tokens import Seal, TokenSigner
from gateway.cache import make_cache
from gateway.config import Config, ProviderConfig
from gateway.limits import make_state
from gateway.limits.limiter import RateLimiter
from gateway.limits.windows import State, StateUnavailable
from gateway.mcp import sessions as mcp_sessions
from gateway.routing.breaker import Breakers
from gateway.routing.catalog import Catalog
from gateway.routing.loads import Loads
from gateway.routing.pools import compile_pools
from gateway.routing.router import Router
from providers.base import Provider
from providers.registry import TYPES

if TYPE_CHECKING:
    from gateway.mcp.access import McpAccess
    from gateway.mcp.hub import Hub

log = logging.getLogger("localrouter.reload")

#: server settings that the listening socket or the app were built with: a reload cannot change them
RESTART_ONLY = ("host", "port", "max_body_bytes", "header_timeout", "body_timeout", "drain_seconds", "shutdown_timeout")
RESTART_ONLY_SECTIONS = ("state", "mcp", "cache")
WATCH_INTERVAL = 1.0


class Runtime:
    """``mcp_changed(server, method)``: an upstream MCP server announced a list change."""

    def __init__(
        self,
        config: Config,
        fallback_key: bytes,
        loads: Loads,
        mcp_changed: Callable[[str, str], None] | None = None,
    ) -> None:
        """``loads``: what pools know of their targets, kept across reloads."""
        self.config = config
        # one pool per provider, so a provider that hangs holds only its own connections
        self.sessions = {p.name: _session(p) for p in config.providers}
        self.providers: dict[str, Provider] = {
            p.name: TYPES[p.type].adapter(p, self.sessions[p.name]) for p in config.providers
        }
        self.catalog = Catalog(self.providers)
        self.mcp = _mcp_hub(config, mcp_changed)
        self.mcp_access = _mcp_access(config) if self.mcp is not None else {}
        self.router = Router(config, self.catalog, compile_pools(config.pools, loads))
        key = config.auth.signing_key.reveal().encode() if config.auth.signing_key else fallback_key
        self.clients = ClientRegistry(config, self.router.policies, TokenSigner(key, config.auth.token_ttl))
        self.mcp_ids = Seal(key, mcp_sessions.ID_PREFIX, mcp_sessions.ID_CONTEXT)  # seals MCP session ids
        self.requests = 0  # in flight on this runtime, counted by the gate middleware
        self._retiring = False
        self._closable = asyncio.Event()  # retired, and no request uses its pools any more

    def start(self) -> None:
        self.catalog.start()

    def started(self) -> None:
        """A request pinned to this runtime began (:meth:`finished` must follow)."""
        self.requests += 1

    def finished(self) -> None:
        self.requests -= 1
        if self._retiring and not self.requests:
            self._closable.set()

    async def retire(self) -> None:
        """Close once the requests that started here have finished (or :meth:`stop_waiting` is called):
        closing a pool ends the upstream calls still using it."""
        self._retiring = True
        if not self.requests:
            self._closable.set()
        await self._closable.wait()
        await self.close()

    def stop_waiting(self) -> None:
        self._closable.set()

    async def close(self) -> None:
        await self.catalog.close()
        closing = [session.close() for session in self.sessions.values()]
        await asyncio.gather(*closing, *([self.mcp.close()] if self.mcp else []))


def _mcp_hub(config: Config, changed: Callable[[str, str], None] | None) -> Hub | None:
    """The upstream MCP servers (none started yet: each starts on first use); None without ``mcp_servers``."""
    if not config.mcp_servers:
        return None
    # imported here: the SDK takes a good part of a second to import, paid only by those who configure it
    from gateway.mcp.hub import Hub

    return Hub(config.mcp_servers, changed)


def _mcp_access(config: Config) -> dict[str, McpAccess]:
    """Each strategy's ``mcp`` globs, compiled once; a strategy without ``mcp`` is not in it."""
    from gateway.mcp.access import McpAccess

    return {s.name: McpAccess.compile(s.mcp) for s in config.strategies if s.mcp is not None}


def _mcp_sessions(config: Config, state: State) -> mcp_sessions.Sessions:
    """The MCP endpoint's sessions: shared through Redis when the state backend is Redis."""
    if config.state.backend != "redis":
        return mcp_sessions.Sessions(config.mcp)
    from gateway.limits.redis_windows import RedisState
    from gateway.mcp.redis_sessions import RedisSessions

    assert isinstance(state, RedisState)

    def script(source: str) -> Callable[[list[str], list[Any]], Any]:
        run = state.script(source)

        async def translated(keys: list[str], args: list[Any]) -> Any:
            try:
                return await run(keys, args)
            except StateUnavailable as exc:
                raise mcp_sessions.SharedUnavailable(str(exc)) from exc

        return translated

    return mcp_sessions.Sessions(config.mcp, RedisSessions(script), fail_closed=config.state.fail_closed)


def _mcp_changed(old: Config, new: Config) -> bool:
    """Whether a reload changed what MCP clients may list: the servers, or the strategies' ``mcp``."""
    grants = [{s.name: s.mcp for s in c.strategies} for c in (old, new)]
    return old.mcp_servers != new.mcp_servers or grants[0] != grants[1]


def _session(provider: ProviderConfig) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=provider.max_connections, ttl_dns_cache=300)
    # No cookie jar: upstream cookies must never be shared between clients (and filtering them costs time).
    return aiohttp.ClientSession(connector=connector, raise_for_status=False, cookie_jar=aiohttp.DummyCookieJar())


class Live:
    """The current runtime, replaced whole by :meth:`reload`."""

    def __init__(self, config: Config) -> None:
        # without a configured key, one random key for this process's whole life (kept across reloads)
        self._fallback_key = secrets.token_bytes(32)
        if config.auth.signing_key is None:
            log.info(
                "no auth.signing_key (or %s): access tokens are valid on this process only, until it stops",
                gwconfig.SIGNING_KEY_ENV,
            )
        self.breakers = Breakers()  # per target id, kept across reloads
        self.overrides = make_overrides(config, self.breakers)  # suspended clients, cooldown resets
        self.state = make_state(config.state)  # budgets and throttles, kept across reloads
        self.limiter = RateLimiter(self.state, config.state.fail_closed)
        self.loads = Loads(self.breakers, self.limiter)  # pools' targets: in flight, latency; kept across reloads
        self.mcp_sessions = _mcp_sessions(config, self.state)  # kept across reloads
        self.cache = make_cache(config.cache, config.state)  # the response cache, kept across reloads
        self._stat = _stat(config.source)
        self._retired: dict[asyncio.Task[None], Runtime] = {}
        # last: it opens connection pools
        self.current = Runtime(config, self._fallback_key, self.loads, self.mcp_sessions.upstream_changed)

    @property
    def source(self) -> str:
        return self.current.config.source

    def reload(self) -> bool:
        """Read the config file again; on any problem keep the running config. True if swapped."""
        path = self.source
        if not os.path.isfile(path):
            log.warning("config reload skipped: the running config did not come from a file (%s)", path)
            return False
        self._stat = _stat(path)
        try:
            new = gwconfig.load(path, types=TYPES)
        except gwconfig.ConfigError as exc:
            log.error(
                "config reload refused, the running config stays (%d problem%s):\n  %s",
                len(exc.problems),
                "s" * (len(exc.problems) != 1),
                "\n  ".join(exc.problems),
            )
            return False
        old = self.current
        for f in fields(new.server):
            if f.name in RESTART_ONLY and getattr(new.server, f.name) != getattr(old.config.server, f.name):
                log.warning("config reload: server.%s changed; it takes effect on restart", f.name)
        for section in RESTART_ONLY_SECTIONS:
            if getattr(new, section) != getattr(old.config, section):
                log.warning("config reload: %s changed; it takes effect on restart", section)
        if new.server.internal_test_token and not old.config.server.internal_test_token:
            log.warning(
                "config reload: server.internal_test_token is now on: the 'internal-test' token bypasses "
                "every client restriction for callers on this host"
            )
        runtime = Runtime(new, self._fallback_key, self.loads, self.mcp_sessions.upstream_changed)
        runtime.start()
        self.current = runtime
        self.mcp_sessions.reloaded(_mcp_changed(old.config, new))
        task = asyncio.get_running_loop().create_task(old.retire())
        self._retired[task] = old
        task.add_done_callback(lambda done: self._retired.pop(done, None))
        log.info(
            "config reloaded from %s: %d providers, %d strategies, %d clients",
            path,
            len(new.providers),
            len(new.strategies),
            len(new.clients),
        )
        return True

    async def watch(self) -> None:
        """Reload when the config file changes (polled: no extra dependency, works on every filesystem)."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            if not self.current.config.server.watch_config:
                continue
            stat = _stat(self.source)
            if stat is not None and stat != self._stat:
                self.reload()

    async def close(self) -> None:
        await self.current.close()
        for runtime in self._retired.values():  # the server has ended its requests: close their pools now
            runtime.stop_waiting()
        await asyncio.gather(*self._retired, return_exceptions=True)
        await self.limiter.drain()
        await self.state.close()
        await self.cache.close()
        await self.overrides.close()


def _stat(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns
