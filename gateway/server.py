"""Running the app: one process on its socket, and its graceful end.

SIGTERM (or SIGINT): ``/health`` answers 503 ``draining`` for ``server.drain_seconds`` while the
gateway still serves (so a load balancer takes it out of rotation), then the listener closes and
requests and streams in flight get up to ``server.shutdown_timeout`` seconds to finish; then exit 0.
SIGHUP reloads the config.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal

from aiohttp import web

from gateway import __version__, connection
from gateway.app import create_app
from gateway.config import Config
from gateway.keys import DRAINING, LIVE
from gateway.listen import ListenError

log = logging.getLogger("localrouter")


class Draining:
    """Set once the process is on its way out."""

    active = False


async def serve(cfg: Config, host: str, port: int, *, reuse_port: bool = False, ready_fd: int | None = None) -> None:
    app = create_app(cfg)
    app[DRAINING] = draining = Draining()
    runner = connection.runner(app, cfg.server, shutdown_timeout=cfg.server.shutdown_timeout)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=1024, reuse_port=reuse_port or None)
        try:
            await site.start()
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
        for address in runner.addresses:
            shown = f"[{address[0]}]" if ":" in address[0] else address[0]
            print(f"LocalRouter Gateway {__version__} listening on http://{shown}:{address[1]}"
                  + (f" (worker {os.getpid()})" if ready_fd is not None else ""), flush=True)
        if ready_fd is not None:
            os.write(ready_fd, b"ready\n")
            os.close(ready_fd)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, app[LIVE].reload)
        await stop.wait()
        draining.active = True
        log.info("draining: /health answers 503 for %gs, then in-flight requests get %gs to finish",
                 cfg.server.drain_seconds, cfg.server.shutdown_timeout)
        await asyncio.sleep(cfg.server.drain_seconds)
    finally:
        await runner.cleanup()  # closes the listener, waits for what is in flight (shutdown_timeout)
        log.info("stopped")
