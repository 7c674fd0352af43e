"""Running the app: one process on its socket, and its graceful end.

SIGTERM (or SIGINT): ``/health`` answers 503 ``draining`` for ``server.drain_seconds`` while the
gateway still serves (so a load balancer takes it out of rotation) and every answer closes its
connection; then the listener closes and requests and streams in flight get up to
``server.shutdown_timeout`` seconds to finish. What still runs then is ended with a
``server_shutting_down`` error (gateway.shutdown); records and logs are flushed; exit 0.
SIGHUP reloads the config.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Callable

from gateway import __version__, connection
from gateway.app import create_app
from gateway.config import Config
from gateway.keys import FIREWALL, LIVE, SHUTDOWN
from gateway.listen import ListenError

log = logging.getLogger("localrouter")

#: aiohttp's own wait for handlers, once the gateway's is over: only stragglers are left for it (a request
#: that came on a kept-alive connection after the last one ended), and it waits twice (see gateway.shutdown)
STRAGGLERS_TIMEOUT = 0.25
#: the least time connections get after the listener closed, before those without a request are closed
SETTLE = 0.5


async def serve(cfg: Config, host: str, port: int, *, reuse_port: bool = False, ready_fd: int | None = None) -> None:
    app = create_app(cfg)
    shutdown = app[SHUTDOWN]
    runner = connection.runner(app, cfg.server, shutdown_timeout=STRAGGLERS_TIMEOUT)
    await runner.setup()
    assert runner.server is not None  # set up
    loop = asyncio.get_running_loop()
    listener: asyncio.Server | None = None
    try:
        # the loop's own server, as aiohttp's TCPSite makes it, but with its sockets at hand (see _close)
        try:
            listener = await loop.create_server(runner.server, host, port, backlog=1024, reuse_port=reuse_port or None)
        except OSError as exc:
            raise ListenError(host, port, exc) from exc
        gc.freeze()  # what startup built lives forever: keep it out of every later collection
        # Each request allocates a few hundred short-lived container objects; with the default threshold
        # (700) the collector runs every couple of requests and, with records waiting to be written, walks
        # them again and again. A larger young generation collects as surely, far less often.
        gc.set_threshold(50_000, 20, 20)
        if ready_fd is None:  # each worker would print the same; workers log discovery failures
            for line in await app[LIVE].current.catalog.report():
                print(line, flush=True)
        for address in (sock.getsockname() for sock in listener.sockets):
            shown = f"[{address[0]}]" if ":" in address[0] else address[0]
            print(
                f"LocalRouter Gateway {__version__} listening on http://{shown}:{address[1]}"
                + (f" (worker {os.getpid()})" if ready_fd is not None else ""),
                flush=True,
            )
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, app[LIVE].reload)
        if ready_fd is not None:  # only now: the supervisor may stop a worker the moment it is ready
            os.write(ready_fd, b"ready\n")
            os.close(ready_fd)
        await stop.wait()
        shutdown.draining = True
        await app[FIREWALL].shut()  # held requests wait for no admin now: they end with 503 at once
        log.info(
            "draining: /health answers 503 for %gs, then in-flight requests get %gs to finish",
            cfg.server.drain_seconds,
            cfg.server.shutdown_timeout,
        )
        await asyncio.sleep(cfg.server.drain_seconds)
        await _close(listener, runner.server)  # connections already open are still served
        settle = min(SETTLE, cfg.server.shutdown_timeout)
        await asyncio.sleep(settle)  # one opened just before the listener closed brings its request meanwhile
        app[LIVE].mcp_sessions.end_streams()  # MCP GET streams wait for nothing: they end now
        await shutdown.finish(cfg.server.shutdown_timeout - settle)
    finally:
        if listener is not None:
            listener.close()  # closed already, unless something failed on the way
        await runner.cleanup()  # closes the connections, flushes usage records and logs (app cleanup)
        log.info("stopped")


async def _close(listener: asyncio.Server, protocol: Callable[[], asyncio.Protocol]) -> None:
    """Close the listening sockets, first taking every connection the kernel completed on them that the
    loop has not accepted yet: closing a listening socket resets those, and their clients have sent a
    request by then (one nginx cannot retry, if it is a POST). Nothing runs in between: no await."""
    loop = asyncio.get_running_loop()
    taken = []
    for sock in listener.sockets:
        with sock.dup() as listening:
            listening.setblocking(False)
            while True:
                try:
                    conn, _ = listening.accept()
                except (BlockingIOError, InterruptedError):
                    break
                taken.append(conn)
    listener.close()
    for conn in taken:
        conn.setblocking(False)
        await loop.connect_accepted_socket(protocol, conn)
