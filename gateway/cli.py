"""``localrouter``: serve the gateway, or check a config file."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from gateway import __version__, config
from gateway.app import create_app
from gateway.keys import LIVE

log = logging.getLogger("localrouter")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="localrouter", description="LocalRouter Gateway")
    parser.add_argument("--version", action="version", version=f"localrouter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("-c", "--config", help="YAML config (default: ./localrouter.yaml, else built-in)")
    serve.add_argument("--host", help="address to bind (overrides server.host)")
    serve.add_argument("--port", type=int, help="port to bind (overrides server.port; 0 picks one)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    check = sub.add_parser("check-config", help="validate a config file and summarise it")
    check.add_argument("-c", "--config", help="YAML config (default: ./localrouter.yaml, else built-in)")
    sub.add_parser("new-secret", help="print a fresh client secret and the line to put in the config")
    return parser


def new_secret() -> str:
    secret = config.generate_secret()
    return (f"{secret}\n"
            f"# give the line above to the client; put only this one in the config:\n"
            f"secret_sha256: {config.hash_secret(secret)}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "new-secret":
        print(new_secret())
        return 0
    try:
        cfg = config.resolve(args.config)
    except config.ConfigError as exc:
        print(f"invalid config ({len(exc.problems)} problem{'s' * (len(exc.problems) != 1)}):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(summary(cfg))
        return 0
    return serve(cfg, args)


def summary(cfg: config.Config) -> str:
    lines = [f"config OK: {cfg.source}", f"server: {cfg.server.host}:{cfg.server.port}", ""]
    lines.append(f"providers ({len(cfg.providers)}):")
    for p in cfg.providers:
        models = ", ".join(p.models) if p.models is not None else f"discovered from {p.base_url}/models"
        lines.append(f"  {p.name:<16} {p.type:<8} {p.base_url}  [{', '.join(sorted(p.endpoints))}]")
        lines.append(f"  {'':<16} models: {models}")
    lines.append(f"strategies ({len(cfg.strategies)}):")
    for s in cfg.strategies:
        auto = f"  auto: {' -> '.join(s.auto)}" if s.auto else ""
        lines.append(f"  {s.name:<16} allow: {', '.join(s.allow) or '(nothing)'}{auto}"
                     f"  fallbacks: {len(s.fallbacks)}")
    lines.append(f"clients ({len(cfg.clients)}):")
    for c in cfg.clients:
        lines.append(f"  {c.name:<16} strategy: {c.strategy}{'' if c.enabled else '  (disabled)'}")
    return "\n".join(lines)


def serve(cfg: config.Config, args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host = args.host or cfg.server.host
    port = cfg.server.port if args.port is None else args.port
    if cfg.generated_secret is not None:
        print("No client configured: generated a secret for client 'default' (shown once; set "
              f"LOCALROUTER_SECRET to choose it):\n  {cfg.generated_secret.reveal()}", flush=True)
    if cfg.server.internal_test_token:
        print("WARNING: server.internal_test_token is on: the 'internal-test' token bypasses every client "
              "restriction for callers on this host. Turn it off outside development.", file=sys.stderr, flush=True)
    _run(_serve(cfg, host, port))
    return 0


def _run(main: Coroutine[Any, Any, None]) -> None:
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # uvloop is optional off Linux/macOS
        pass
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


async def _serve(cfg: config.Config, host: str, port: int) -> None:
    app = create_app(cfg)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        gc.freeze()  # what startup built lives forever: keep it out of every later collection
        for address in runner.addresses:
            shown = f"[{address[0]}]" if ":" in address[0] else address[0]
            print(f"LocalRouter Gateway {__version__} listening on http://{shown}:{address[1]}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, app[LIVE].reload)
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()
